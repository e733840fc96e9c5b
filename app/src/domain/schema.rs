//! OpenAPI schemas of the domain types whose JSON form is a parsed string or number, written by
//! hand because their serde form (`try_from`, a custom `Deserialize`) is not what a derive
//! sees. Each one states the grammar its parser enforces, so a schema-valid value is accepted.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::ids::{Name, Percent, Release, Secs, Weight};
use super::window::{WeekTime, WindowTime};

fn string(description: &str, pattern: &str, max_length: Option<usize>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(max_length)
}

/// A share in 0.01 % steps, as JSON: a number 0–100 with at most two decimals. (No
/// `multipleOf: 0.01`: in binary floating point 33.33 is not a multiple of 0.01, so validators
/// would refuse the very values the server writes.)
fn percentage(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some(format!("{description}; at most two decimals")))
        .minimum(Some(0))
        .maximum(Some(100))
}

macro_rules! schema {
    ($ty:ty, $name:literal, $build:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $build.into()
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

schema!(
    Name,
    "Name",
    string(
        "A DNS label: 1–63 of a-z, 0-9 and '-', not starting or ending with '-'",
        "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        Some(Name::MAX_LEN),
    )
);
schema!(
    Release,
    "Release",
    string(
        "A deployable version (v2.1.0, registry/app@sha256:…): letters, digits and ._:+@/-, \
         starting with a letter or digit; '/' separates non-empty parts that are not '.' or '..'",
        "^[A-Za-z0-9][A-Za-z0-9._:+@-]*(/([A-Za-z0-9_:+@-][A-Za-z0-9._:+@-]*|\\.[A-Za-z0-9_:+@-][A-Za-z0-9._:+@-]*|\\.\\.[A-Za-z0-9._:+@-]+))*$",
        Some(Release::MAX_LEN),
    )
);
schema!(Weight, "Weight", percentage("A share of a pool's traffic in percent (0.01 % steps)"));
schema!(Percent, "Percent", percentage("A feature-flag rollout in percent (0.01 % steps)"));
schema!(
    Secs,
    "Secs",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some("A length of time in whole seconds"))
);
schema!(
    WindowTime,
    "WindowTime",
    string(
        "An RFC 3339 instant (2026-12-01T08:00:00Z) or a wall-clock time (2026-12-01T08:00) \
         in the window's timezone",
        "^20[2-9][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]0[0-9]:00)?)?$",
        None,
    )
);
schema!(
    WeekTime,
    "WeekTime",
    string(
        "A time of the week: Mon–Sun and HH:MM, e.g. 'Fri 16:00'",
        "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([01][0-9]|2[0-3]):[0-5][0-9]$",
        None,
    )
);
