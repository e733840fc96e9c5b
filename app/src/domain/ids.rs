//! Validated newtypes for the words a campaign is made of: names, releases, traffic weights,
//! rollout percentages and durations. Each is checked once, in its constructor, so everything past
//! the form or the API boundary can trust it. Nothing here knows about campaigns or backends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a raw value was refused; every message says what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ParseError {
    #[error("{what} must not be empty; use 1–{max} characters")]
    Empty { what: String, max: usize },
    #[error("{what} is {len} characters long; the limit is {max}")]
    TooLong { what: String, len: usize, max: usize },
    #[error(
        "{what} contains {found:?}; only lowercase letters a–z, digits 0–9 and '-' are allowed, e.g. web-pool"
    )]
    BadNameChar { what: String, found: char },
    #[error("{what} must start and end with a letter or digit, not '-'")]
    EdgeHyphen { what: String },
    #[error("{what} contains whitespace; use a single token such as v2.1.0 or an image id")]
    Whitespace { what: String },
    #[error(
        "{what} contains {found:?}; a release is letters, digits and . _ : + @ - (and / between parts), starting with a letter or digit, e.g. v2.1.0 or registry.local/web@sha256:ab12"
    )]
    BadReleaseChar { what: String, found: char },
    #[error("{what} {why}; write it like v2.1.0 or registry.local/web:v2")]
    BadReleaseShape { what: String, why: String },
    #[error(
        "{input:?} is not a percentage; write a number from 0 to 100 with at most two decimals, e.g. 12.34"
    )]
    NotAPercent { input: String },
    #[error("{input} has more than two decimals; the finest step is 0.01 %")]
    TooPrecise { input: String },
    #[error("{input} % is out of range; use a value from 0 to 100")]
    OutOfRange { input: String },
    #[error(
        "{input:?} is not a duration; write seconds (90 or 90s), minutes (5m) or hours (1h30m)"
    )]
    NotADuration { input: String },
}

/// A slug naming a campaign, service, environment, pool, target, backend or flag:
/// 1–63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-` (a DNS label, so it
/// can appear in host names and HAProxy server names unchanged).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let what = || "name".to_string();
        if raw.is_empty() {
            return Err(ParseError::Empty { what: what(), max: Self::MAX_LEN });
        }
        let len = raw.chars().count();
        if len > Self::MAX_LEN {
            return Err(ParseError::TooLong { what: what(), len, max: Self::MAX_LEN });
        }
        if let Some(found) =
            raw.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(ParseError::BadNameChar { what: what(), found });
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(ParseError::EdgeHyphen { what: what() });
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl FromStr for Name {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A version a provider can deploy: `v2.1.0`, `2024-06-01.3`, `registry/app@sha256:…`.
///
/// The grammar is strict because a release reaches command lines, file names and HTTP bodies:
/// `[A-Za-z0-9][A-Za-z0-9._:+@/-]{0,127}`, where `/` only separates non-empty parts that are
/// not `.` or `..` (so a release can never climb out of a directory). No whitespace, quotes,
/// `$`, `;`, `|`, `&`, backticks, brackets or braces: nothing a shell, an HAProxy command or an
/// nginx file would read as syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Release(String);

impl Release {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let what = || "release".to_string();
        if raw.is_empty() {
            return Err(ParseError::Empty { what: what(), max: Self::MAX_LEN });
        }
        let len = raw.chars().count();
        if len > Self::MAX_LEN {
            return Err(ParseError::TooLong { what: what(), len, max: Self::MAX_LEN });
        }
        if raw.chars().any(char::is_whitespace) {
            return Err(ParseError::Whitespace { what: what() });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._:+@/-".contains(c);
        if let Some(found) = raw.chars().find(|c| !allowed(*c)) {
            return Err(ParseError::BadReleaseChar { what: what(), found });
        }
        let shape = |why: &str| ParseError::BadReleaseShape { what: what(), why: why.into() };
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(shape("must start with a letter or digit"));
        }
        if raw.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(shape("has an empty, '.' or '..' part between slashes"));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The release folded into name characters, for naming the instances that will run it.
    pub fn slug(&self) -> String {
        let mut out = String::new();
        for c in self.0.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let trimmed = out.trim_end_matches('-');
        if trimmed.is_empty() { "new".to_string() } else { trimmed.to_string() }
    }
}

impl TryFrom<String> for Release {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Release> for String {
    fn from(value: Release) -> Self {
        value.0
    }
}

impl FromStr for Release {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const FULL_BP: u32 = 10_000;

fn parse_percent_bp(raw: &str) -> Result<u32, ParseError> {
    let input = raw.trim().trim_end_matches('%').trim_end();
    let not_a_percent = || ParseError::NotAPercent { input: raw.to_string() };
    let (whole, frac) = match input.split_once('.') {
        Some((w, f)) => (w, f),
        None => (input, ""),
    };
    if input.starts_with('-') && !whole.is_empty() {
        return Err(ParseError::OutOfRange { input: input.to_string() });
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(frac)
        || (input.contains('.') && frac.is_empty())
    {
        return Err(not_a_percent());
    }
    if frac.len() > 2 {
        return Err(ParseError::TooPrecise { input: input.to_string() });
    }
    // More than three integer digits is out of range whatever they are; stops u32 overflow too.
    if whole.trim_start_matches('0').len() > 3 {
        return Err(ParseError::OutOfRange { input: input.to_string() });
    }
    let whole: u32 = whole.parse().map_err(|_| not_a_percent())?;
    let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| not_a_percent())?;
    let bp = whole * 100 + frac;
    if bp > FULL_BP {
        return Err(ParseError::OutOfRange { input: input.to_string() });
    }
    Ok(bp)
}

fn percent_f64_bp(value: f64) -> Result<u32, ParseError> {
    let input = value.to_string();
    if !value.is_finite() {
        return Err(ParseError::NotAPercent { input });
    }
    if !(0.0..=100.0).contains(&value) {
        return Err(ParseError::OutOfRange { input });
    }
    let scaled = value * 100.0;
    let rounded = scaled.round();
    // Binary floats cannot hold 12.34 exactly; anything within a hair of a whole basis point is it.
    if (scaled - rounded).abs() > 1e-6 {
        return Err(ParseError::TooPrecise { input });
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(rounded as u32)
}

fn fmt_bp(bp: u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let whole = bp / 100;
    let frac = bp % 100;
    if frac == 0 {
        write!(f, "{whole} %")
    } else if frac.is_multiple_of(10) {
        write!(f, "{whole}.{} %", frac / 10)
    } else {
        write!(f, "{whole}.{frac:02} %")
    }
}

macro_rules! basis_points {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(try_from = "PercentRepr", into = "f64")]
        pub struct $ty(u32);

        impl $ty {
            pub const ZERO: Self = Self(0);
            pub const FULL: Self = Self(FULL_BP);

            /// Parses `"12.34"`, `"25"` or `"25 %"`: 0–100 with at most two decimals.
            pub fn parse_percent(raw: &str) -> Result<Self, ParseError> {
                parse_percent_bp(raw).map(Self)
            }

            pub fn from_percent(value: f64) -> Result<Self, ParseError> {
                percent_f64_bp(value).map(Self)
            }

            pub fn from_basis_points(bp: u32) -> Result<Self, ParseError> {
                if bp > FULL_BP {
                    return Err(ParseError::OutOfRange { input: format!("{}", f64::from(bp) / 100.0) });
                }
                Ok(Self(bp))
            }

            /// For arithmetic that is already bounded; anything above 100 % becomes 100 %.
            pub fn saturating_from_basis_points(bp: u32) -> Self {
                Self(bp.min(FULL_BP))
            }

            pub fn basis_points(self) -> u32 {
                self.0
            }

            pub fn as_percent(self) -> f64 {
                f64::from(self.0) / 100.0
            }

            pub fn is_zero(self) -> bool {
                self.0 == 0
            }

            pub fn is_full(self) -> bool {
                self.0 == FULL_BP
            }

            /// What is left of 100 % after this share.
            pub fn complement(self) -> Self {
                Self(FULL_BP - self.0)
            }
        }

        impl TryFrom<PercentRepr> for $ty {
            type Error = ParseError;
            fn try_from(value: PercentRepr) -> Result<Self, Self::Error> {
                match value {
                    PercentRepr::Number(v) => Self::from_percent(v),
                    PercentRepr::Text(s) => Self::parse_percent(&s),
                }
            }
        }

        impl From<$ty> for f64 {
            fn from(value: $ty) -> Self {
                value.as_percent()
            }
        }

        impl From<$ty> for u32 {
            fn from(value: $ty) -> Self {
                value.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_bp(self.0, f)
            }
        }
    };
}

/// How people write a percentage in specs: a number (`25`, `12.34`) or text (`"25 %"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum PercentRepr {
    Number(f64),
    Text(String),
}

basis_points! {
    /// A share of a pool's traffic in basis points (0.01 % steps), 0–10 000.
    /// Serialized as a percentage (`12.34`), which people can read and write in spec files;
    /// two decimals round-trip exactly.
    Weight
}

basis_points! {
    /// A feature-flag rollout percentage in basis points (0.01 % steps), 0–10 000.
    /// Kept apart from [`Weight`] so a flag percentage can't be handed to a router by mistake.
    Percent
}

impl Weight {
    /// Splits `self` into `n` shares that differ by at most one basis point and add up exactly;
    /// the first shares take the remainder so the result is deterministic.
    pub fn split_even(self, n: usize) -> Vec<Weight> {
        let Ok(n32) = u32::try_from(n) else {
            return Vec::new();
        };
        if n32 == 0 {
            return Vec::new();
        }
        let base = self.0 / n32;
        let extra = self.0 % n32;
        (0..n32).map(|i| Weight(base + u32::from(i < extra))).collect()
    }
}

/// A length of time in whole seconds; displays as `90s`, `5m`, `1h30m`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Secs(pub u64);

impl Secs {
    /// Parses `90`, `90s`, `5m`, `2h`, `1h30m`, `1m30s`.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::NotADuration { input: raw.to_string() };
        let input = raw.trim();
        if input.is_empty() {
            return Err(bad());
        }
        if input.chars().all(|c| c.is_ascii_digit()) {
            return input.parse().map(Secs).map_err(|_| bad());
        }
        let mut total: u64 = 0;
        let mut number = String::new();
        for c in input.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
            number.clear();
        }
        if !number.is_empty() {
            return Err(bad());
        }
        Ok(Secs(total))
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        // Under two minutes, "90s" reads better than "1m30s".
        if s < 120 && !s.is_multiple_of(60) || s == 0 {
            return write!(f, "{s}s");
        }
        let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if sec > 0 {
            write!(f, "{sec}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_dns_label_slugs() {
        for ok in ["web", "web-pool", "a", "v2-canary-1", &"a".repeat(63)] {
            assert!(Name::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn names_refuse_uppercase_spaces_edges_and_length() {
        for bad in ["", "Web", "web pool", "-web", "web-", "web_pool", "wéb", &"a".repeat(64)] {
            assert!(Name::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_bad_name_message_says_what_is_allowed() {
        let err = Name::parse("Web").expect_err("uppercase is refused").to_string();
        assert!(err.contains("only lowercase letters"), "{err}");
    }

    #[test]
    fn names_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<Name>("\"web\"").is_ok());
        assert!(serde_json::from_str::<Name>("\"Web\"").is_err());
    }

    #[test]
    fn releases_refuse_empty_whitespace_and_overlong() {
        assert!(Release::parse("v2.1.0").is_ok());
        assert!(Release::parse("registry.local/web@sha256:abc").is_ok());
        assert!(Release::parse("").is_err());
        assert!(Release::parse("v2 1").is_err());
        assert!(Release::parse(&"x".repeat(129)).is_err());
        assert!(Release::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn releases_refuse_every_shell_and_config_metacharacter() {
        for ok in ["v2", "1.4.2+build.7", "ghcr.io/acme/web@sha256:0af1", "2024-06-01_3", "A:b"] {
            assert!(Release::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "v2$(touch${IFS}/tmp/x)",
            "v2;id",
            "v2|id",
            "v2&&id",
            "v2`id`",
            "v2'",
            "v2\"",
            "v2>x",
            "v2<x",
            "v2{a}",
            "v2\\x",
            "v2\u{0}",
            "v2%0a",
            "v2#x",
            "v2*",
            "v2?",
            "v2!",
            "v2~",
            "v2=x",
            "v2,x",
            "-rf",
            ".hidden",
            "/abs",
            "a/../../etc",
            "a//b",
            "a/",
            "v2\nid",
            "v2\tx",
            "v2\r",
        ] {
            let err = Release::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("release"), "{bad}: {err}");
        }
        let msg = Release::parse("v2$(x)").expect_err("refused").to_string();
        assert!(msg.contains("'$'") && msg.contains("letters, digits"), "{msg}");
    }

    #[test]
    fn release_slugs_are_name_safe() {
        let slug = |r: &str| Release::parse(r).map(|r| r.slug()).unwrap_or_default();
        assert_eq!(slug("v2.1.0"), "v2-1-0");
        assert_eq!(slug("Registry/App@sha256:AB"), "registry-app-sha256-ab");
        assert_eq!(slug("7.+_"), "7");
    }

    #[test]
    fn weights_parse_percent_with_up_to_two_decimals() {
        let bp = |s: &str| Weight::parse_percent(s).map(Weight::basis_points);
        assert_eq!(bp("12.34"), Ok(1234));
        assert_eq!(bp("25"), Ok(2500));
        assert_eq!(bp("25 %"), Ok(2500));
        assert_eq!(bp("0.5"), Ok(50));
        assert_eq!(bp("100"), Ok(10_000));
        assert_eq!(bp("0"), Ok(0));
    }

    #[test]
    fn weights_refuse_three_decimals_negatives_over_100_and_junk() {
        for bad in ["12.345", "-1", "100.01", "101", "abc", "", "1e2", "1.", ".5", "99999999999"] {
            assert!(Weight::parse_percent(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(Weight::parse_percent("12.345"), Err(ParseError::TooPrecise { .. })));
        assert!(matches!(Weight::parse_percent("-1"), Err(ParseError::OutOfRange { .. })));
    }

    #[test]
    fn weights_from_floats_refuse_nan_and_excess_precision() {
        assert_eq!(Weight::from_percent(12.34).map(Weight::basis_points), Ok(1234));
        assert_eq!(Weight::from_percent(0.01).map(Weight::basis_points), Ok(1));
        assert!(Weight::from_percent(f64::NAN).is_err());
        assert!(Weight::from_percent(-0.5).is_err());
        assert!(Weight::from_percent(100.5).is_err());
        assert!(Weight::from_percent(1.001).is_err());
    }

    #[test]
    fn weights_display_without_trailing_zeros() {
        let show = |bp| Weight::from_basis_points(bp).map(|w| w.to_string()).unwrap_or_default();
        assert_eq!(show(1234), "12.34 %");
        assert_eq!(show(2500), "25 %");
        assert_eq!(show(1250), "12.5 %");
        assert_eq!(show(5), "0.05 %");
    }

    #[test]
    fn weights_serialize_as_percentages_and_refuse_more_than_full() {
        assert_eq!(serde_json::to_string(&Weight::FULL).ok().as_deref(), Some("100.0"));
        let w = Weight::parse_percent("12.34").expect("valid");
        let json = serde_json::to_string(&w).expect("serializes");
        assert_eq!(json, "12.34");
        assert_eq!(serde_json::from_str::<Weight>(&json).ok(), Some(w), "round-trips exactly");
        assert_eq!(
            serde_json::from_str::<Weight>("\"25 %\"").ok().map(|w| w.basis_points()),
            Some(2500)
        );
        assert!(serde_json::from_str::<Weight>("100.01").is_err());
        assert!(serde_json::from_str::<Weight>("1.005").is_err(), "finer than 0.01 % is refused");
        assert!(serde_json::from_str::<Percent>("25").is_ok());
    }

    #[test]
    fn an_even_split_adds_up_exactly() {
        let parts = Weight::FULL.split_even(3);
        assert_eq!(parts.iter().map(|w| w.basis_points()).collect::<Vec<_>>(), [3334, 3333, 3333]);
        assert!(Weight::FULL.split_even(0).is_empty());
    }

    #[test]
    fn durations_display_in_the_largest_whole_units() {
        assert_eq!(Secs(300).to_string(), "5m");
        assert_eq!(Secs(90).to_string(), "90s");
        assert_eq!(Secs(0).to_string(), "0s");
        assert_eq!(Secs(5400).to_string(), "1h30m");
        assert_eq!(Secs(3600).to_string(), "1h");
        assert_eq!(Secs(125).to_string(), "2m5s");
    }

    #[test]
    fn durations_parse_units() {
        assert_eq!(Secs::parse("90"), Ok(Secs(90)));
        assert_eq!(Secs::parse("5m"), Ok(Secs(300)));
        assert_eq!(Secs::parse("1h30m"), Ok(Secs(5400)));
        assert!(Secs::parse("5x").is_err());
        assert!(Secs::parse("m").is_err());
        assert!(Secs::parse("5m3").is_err());
    }
}
