//! What the campaign editor asks of the server: environments fit to send to a browser, drafts
//! created through the campaign service (validated again here, whatever the browser said), and
//! campaign specs read from and written to TOML, YAML or JSON. The parsers live here so they stay
//! out of the WebAssembly build. It holds no rules of its own.

use app::api::{ApiError, ErrorCode};
use app::domain::auth::Principal;
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use serde_json::{Map, Value};

use crate::services::campaigns::{CampaignService, DraftFrom};

/// The spec file formats people write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    Toml,
    Yaml,
    Json,
}

impl SpecFormat {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "toml" => Ok(Self::Toml),
            "yaml" | "yml" => Ok(Self::Yaml),
            "json" => Ok(Self::Json),
            other => Err(ApiError::field(
                "format",
                format!("'{other}' is not a spec format; use toml, yaml or json"),
            )),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Toml => "TOML",
            Self::Yaml => "YAML",
            Self::Json => "JSON",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Toml => "toml",
            Self::Yaml => "yaml",
            Self::Json => "json",
        }
    }
}

/// A spec that does not read: the field (`spec` when the text itself is malformed) and a message
/// that names the line.
fn unreadable(format: SpecFormat, path: String, line: Option<usize>, message: &str) -> ApiError {
    let field = if path == "." { "spec".to_string() } else { path };
    let message = message.trim().trim_end_matches('.');
    let located = match line {
        Some(l) => format!("line {l}: {message}"),
        None => message.to_string(),
    };
    let mut err = ApiError::new(
        ErrorCode::Invalid,
        format!("the {} is not a campaign spec: {field}: {located}", format.label()),
    );
    err.fields.insert(field, located);
    err
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// Reads a campaign spec; an error names the field path and, where the parser knows it, the line.
pub fn read_spec(text: &str, format: SpecFormat) -> Result<CampaignSpec, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::field(
            "spec",
            format!("the {} is empty; paste a campaign spec or choose a file", format.label()),
        ));
    }
    match format {
        SpecFormat::Toml => serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let line = inner.span().map(|s| line_of(text, s.start));
                unreadable(format, path, line, inner.message())
            }),
        SpecFormat::Yaml => {
            serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(
                |e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    let line = inner.location().map(|l| l.line());
                    // serde_yaml appends "at line N column M" itself; say the line once.
                    let message = inner.to_string();
                    let message = message.split(" at line ").next().unwrap_or(&message);
                    unreadable(format, path, line, message)
                },
            )
        }
        SpecFormat::Json => {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = inner.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message);
                unreadable(format, path, Some(inner.line()), message)
            })
        }
    }
}

/// Writes a campaign spec in the given format (it reads back equal with [`read_spec`]).
pub fn write_spec(spec: &CampaignSpec, format: SpecFormat) -> Result<String, ApiError> {
    let written = match format {
        SpecFormat::Toml => toml::to_string(spec).map_err(|e| e.to_string()),
        SpecFormat::Yaml => serde_yaml::to_string(spec).map_err(|e| e.to_string()),
        SpecFormat::Json => serde_json::to_string_pretty(spec).map_err(|e| e.to_string()),
    };
    written.map_err(|e| {
        tracing::error!(error = %e, format = format.label(), "a campaign spec could not be written");
        ApiError::internal()
    })
}

/// The environment without backend settings, which may hold passwords and API keys. A DNS
/// router keeps its record name and TTL: the plan compiler writes them into the plan.
pub fn without_secrets(mut env: Environment) -> Environment {
    for b in &mut env.backends {
        let mut kept = Map::new();
        if b.is_dns_router() {
            for key in ["record", "ttl"] {
                if let Some(v) = b.settings.get(key) {
                    kept.insert(key.to_string(), v.clone());
                }
            }
        }
        b.settings = Value::Object(kept);
    }
    env
}

#[async_trait::async_trait]
impl app::api::ports::EditorPort for CampaignService {
    async fn environments(&self, actor: &Principal) -> Result<Vec<Environment>, ApiError> {
        let views = self.environments().list(actor).await?;
        Ok(views.into_iter().map(|v| without_secrets(v.spec)).collect())
    }

    async fn create_draft(&self, actor: &Principal, spec: CampaignSpec) -> Result<i64, ApiError> {
        Ok(self.create(actor, spec).await?.summary.id)
    }

    async fn save_draft(
        &self,
        actor: &Principal,
        id: Option<i64>,
        spec: CampaignSpec,
    ) -> Result<i64, ApiError> {
        match id {
            None => Ok(self.create(actor, spec).await?.summary.id),
            Some(id) => Ok(self.update(actor, id, spec).await?.summary.id),
        }
    }

    async fn draft_spec(&self, actor: &Principal, id: i64) -> Result<CampaignSpec, ApiError> {
        CampaignService::draft_spec(self, actor, id).await
    }

    async fn draft_from(
        &self,
        actor: &Principal,
        id: i64,
        mode: &str,
    ) -> Result<CampaignSpec, ApiError> {
        let mode = match mode {
            "clone" => DraftFrom::Clone,
            "rollback_release" => DraftFrom::RollbackRelease,
            other => {
                return Err(ApiError::field(
                    "mode",
                    format!(
                        "'{other}' is not a way to start a draft; use clone or rollback_release"
                    ),
                ));
            }
        };
        CampaignService::draft_from(self, actor, id, mode).await
    }

    fn read_spec(&self, text: &str, format: &str) -> Result<CampaignSpec, ApiError> {
        read_spec(text, SpecFormat::parse(format)?)
    }

    fn write_spec(&self, spec: &CampaignSpec, format: &str) -> Result<String, ApiError> {
        write_spec(spec, SpecFormat::parse(format)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = include_str!("../../../examples/canary.toml");

    #[test]
    fn the_example_canary_reads_and_writes_back_equal_in_every_format() {
        let spec = read_spec(CANARY, SpecFormat::Toml).expect("example reads");
        for format in [SpecFormat::Toml, SpecFormat::Yaml, SpecFormat::Json] {
            let text = write_spec(&spec, format).expect("writes");
            let back =
                read_spec(&text, format).unwrap_or_else(|e| panic!("{format:?}: {e:?}\n{text}"));
            assert_eq!(back, spec, "{format:?}");
        }
    }

    #[test]
    fn a_toml_syntax_error_names_the_line() {
        let text = CANARY.replace("pool = \"web-pool\"", "pool = web-pool");
        let err = read_spec(&text, SpecFormat::Toml).expect_err("bad toml");
        let line = CANARY.lines().position(|l| l.starts_with("pool =")).expect("pool line") + 1;
        assert!(err.message.contains(&format!("line {line}")), "{}", err.message);
    }

    #[test]
    fn a_wrongly_typed_field_is_named_by_its_path_and_line() {
        let text = CANARY.replace("max_p99_ms = 800", "max_p99_ms = \"fast\"");
        let err = read_spec(&text, SpecFormat::Toml).expect_err("bad field");
        let (field, message) = err.fields.iter().next().expect("a field");
        assert_eq!(field, "gates[0].max_p99_ms");
        let line = CANARY.lines().position(|l| l.starts_with("max_p99_ms")).expect("line") + 1;
        assert!(message.starts_with(&format!("line {line}:")), "{message}");
    }

    #[test]
    fn a_yaml_spec_missing_a_field_says_which() {
        let err = read_spec("name: x\nservice: web\n", SpecFormat::Yaml).expect_err("incomplete");
        assert!(err.message.contains("missing field"), "{}", err.message);
        assert!(err.message.contains("line"), "{}", err.message);
    }

    #[test]
    fn an_unknown_format_is_refused_by_name() {
        let err = SpecFormat::parse("xml").expect_err("xml");
        assert_eq!(
            err.field_error("format"),
            Some("'xml' is not a spec format; use toml, yaml or json")
        );
    }

    #[test]
    fn backend_settings_are_stripped_but_a_dns_record_is_kept() {
        let env: Environment = serde_json::from_value(serde_json::json!({
            "name": "production", "targets": [], "pools": [],
            "backends": [
                { "name": "dns", "kind": "router", "driver": "powerdns",
                  "settings": { "api_key": "s3cret", "record": "web.example.com", "ttl": 30 } },
                { "name": "edge", "kind": "router", "driver": "haproxy",
                  "settings": { "socket": "/run/haproxy.sock", "password": "s3cret" } }
            ]
        }))
        .expect("env");
        let clean = serde_json::to_string(&without_secrets(env)).expect("json");
        assert!(!clean.contains("s3cret") && !clean.contains("socket"), "{clean}");
        assert!(clean.contains("web.example.com") && clean.contains("\"ttl\":30"), "{clean}");
    }
}
