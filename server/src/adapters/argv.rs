//! Command templates run without a shell. A template is split into words once, when the
//! settings are read (that is, when the environment is saved), and each run substitutes
//! placeholders such as `{release}` inside those words: a value always stays inside the one
//! argument it was put in and is never parsed again, so `v2$(touch /tmp/x)` (refused earlier by
//! the release grammar anyway) would be passed literally, as one argument.
//!
//! A template is either a list of words (`["./deploy.sh", "--release", "{release}"]`) or one
//! string split like a shell splits words: on whitespace, with `'single'` and `"double"` quotes
//! and `\` escapes. Anything a shell would treat as syntax (`|`, `;`, `&`, `$`, backticks,
//! `<`, `>`, `(`, `)`, `*`, `?`, `~` at the start of a word, `#`) is refused outside quotes, because
//! a reader would expect it to work: to use a shell, say so, e.g. `["sh", "-c", "…"]`, and read
//! the values from the `SWITCHYARD_*` variables, which a shell expands without re-parsing.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A template's words, checked and split; [`Template::render`] fills in the placeholders.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    words: Vec<String>,
    source: String,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.words).finish()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Splits `source` into words; `placeholders` are the names this template may use.
    pub fn parse(source: &str, placeholders: &[&str]) -> Result<Self, String> {
        let words = split(source)?;
        Self::from_words(words, source.to_string(), placeholders)
    }

    pub fn from_words(
        words: Vec<String>,
        source: String,
        placeholders: &[&str],
    ) -> Result<Self, String> {
        if words.is_empty() || words[0].trim().is_empty() {
            return Err("the command is empty; name a program to run".into());
        }
        for w in &words {
            if w.contains('\0') {
                return Err("a word contains a NUL character".into());
            }
            check_placeholders(w, placeholders)?;
        }
        Ok(Self { words, source })
    }

    /// A template written in code (a default), taken as it is.
    pub(crate) fn literal(words: &[&str]) -> Self {
        Self { words: words.iter().map(|w| (*w).to_string()).collect(), source: words.join(" ") }
    }

    /// The words with `{name}` replaced by `values[name]`; `{{` and `}}` are literal braces.
    pub fn render(&self, values: &[(&str, &str)]) -> Vec<String> {
        self.words.iter().map(|w| substitute(w, values)).collect()
    }

    /// The program, as written (before placeholders are filled in).
    pub fn program(&self) -> &str {
        &self.words[0]
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// Reads a template from a string or a list of strings; placeholder names are checked by the
/// adapter that owns it (`Template::check`).
impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Template;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: a string or a list of words")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Template, E> {
                split(v)
                    .and_then(|w| Template::from_words(w, v.to_string(), ANY))
                    .map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Template, A::Error> {
                let mut words = Vec::new();
                while let Some(w) = seq.next_element::<String>()? {
                    words.push(w);
                }
                let shown = words.join(" ");
                Template::from_words(words, shown, ANY).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Accepts any placeholder name while deserializing; [`Template::check`] narrows it.
const ANY: &[&str] = &["*"];

impl Template {
    /// Refuses placeholders other than `allowed`, naming the first unknown one.
    pub fn check(&self, allowed: &[&str]) -> Result<(), String> {
        for w in &self.words {
            check_placeholders(w, allowed)?;
        }
        Ok(())
    }
}

fn check_placeholders(word: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = word;
    while let Some(i) = rest.find(['{', '}']) {
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&c) {
            rest = &after[1..];
            continue;
        }
        if c == b'}' {
            return Err(format!(
                "{word:?} has a '}}' without '{{' (write }}}} for a literal brace)"
            ));
        }
        let end = after.find('}').ok_or_else(|| {
            format!("{word:?} has a '{{' without '}}' (write {{{{ for a literal brace)")
        })?;
        let name = &after[..end];
        if !(allowed == ANY || allowed.contains(&name)) {
            let known: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(format!("unknown placeholder {{{name}}}; use {}", known.join(", ")));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

fn substitute(word: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&c) {
            out.push(c as char);
            rest = &after[1..];
            continue;
        }
        match after.find('}') {
            Some(end) if c == b'{' => {
                let name = &after[..end];
                let value = values.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| *v);
                out.push_str(value);
                rest = &after[end + 1..];
            }
            _ => {
                out.push(c as char);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a command line into words like a POSIX shell, without expanding anything, and
/// refuses what only a shell could do.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a \" quote is not closed".into()),
                        },
                        Some(c @ ('$' | '`')) => return Err(shell_only(c)),
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the command ends with a lone \\".into()),
                }
            }
            '|' | ';' | '&' | '$' | '`' | '<' | '>' | '(' | ')' | '*' | '?' | '#' => {
                return Err(shell_only(c));
            }
            '~' if !in_word => return Err(shell_only(c)),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn shell_only(c: char) -> String {
    format!(
        "{c:?} is shell syntax, and commands run without a shell; write the words as a list, \
         or run a shell explicitly: [\"sh\", \"-c\", \"…\"] with the values read from the \
         SWITCHYARD_* variables"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &[&str] = &["exe", "release", "port", "target"];

    #[test]
    fn a_line_is_split_once_into_words_with_quotes_and_escapes() {
        let t = Template::parse("{exe} demo-service --release {release} --port {port}", P)
            .expect("parses");
        assert_eq!(
            t.words(),
            ["{exe}", "demo-service", "--release", "{release}", "--port", "{port}"]
        );
        let t = Template::parse(r#"./deploy 'two words' "say \"hi\"" a\ b"#, P).expect("parses");
        assert_eq!(t.words(), ["./deploy", "two words", "say \"hi\"", "a b"]);
    }

    #[test]
    fn a_value_stays_inside_its_own_argument_and_is_never_parsed_again() {
        let t = Template::parse("{exe} run --release={release} {target}", P).expect("parses");
        let argv = t.render(&[
            ("exe", "/opt/switch yard/bin"),
            ("release", "v2$(touch${IFS}/tmp/x); rm -rf /"),
            ("target", "web-1 --evil"),
        ]);
        assert_eq!(
            argv,
            [
                "/opt/switch yard/bin",
                "run",
                "--release=v2$(touch${IFS}/tmp/x); rm -rf /",
                "web-1 --evil"
            ]
        );
    }

    #[test]
    fn shell_syntax_outside_quotes_is_refused_with_a_way_out() {
        for bad in [
            "deploy.sh && echo",
            "deploy.sh; id",
            "deploy.sh | tee",
            "deploy.sh > log",
            "deploy.sh $HOME",
            "deploy.sh `id`",
            "deploy.sh \"$HOME\"",
            "(deploy.sh)",
            "deploy.sh *.conf",
            "~/deploy.sh",
            "deploy.sh # comment",
            "deploy.sh 'open",
        ] {
            let err = Template::parse(bad, P).expect_err(bad);
            assert!(!err.is_empty(), "{bad}");
        }
        let err = Template::parse("a && b", P).expect_err("refused");
        assert!(err.contains("without a shell") && err.contains("sh"), "{err}");
        // Quoted, it is just text for the program.
        assert!(Template::parse("echo 'a && b; $x'", P).is_ok());
    }

    #[test]
    fn unknown_placeholders_and_empty_commands_are_refused_but_braces_can_be_escaped() {
        assert!(Template::parse("   ", P).is_err());
        let err = Template::parse("deploy {relase}", P).expect_err("typo");
        assert!(err.contains("{relase}") && err.contains("{release}"), "{err}");
        let t = Template::parse("printf {{}}-{release}", P).expect("escaped");
        assert_eq!(t.render(&[("release", "v2")]), ["printf", "{}-v2"]);
    }

    #[test]
    fn a_list_of_words_deserializes_as_is_and_a_string_is_split() {
        let t: Template = serde_json::from_value(serde_json::json!(["sh", "-c", "echo $X; id"]))
            .expect("a list is taken literally");
        assert_eq!(t.words(), ["sh", "-c", "echo $X; id"]);
        let t: Template = serde_json::from_value(serde_json::json!("a 'b c'")).expect("a line");
        assert_eq!(t.words(), ["a", "b c"]);
        let err = serde_json::from_value::<Template>(serde_json::json!("a; b")).expect_err("shell");
        assert!(err.to_string().contains("shell syntax"), "{err}");
        assert!(serde_json::from_value::<Template>(serde_json::json!(5)).is_err());
    }
}
