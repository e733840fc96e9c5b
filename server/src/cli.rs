//! The `switchyard` command line. Scripts and CI rely on these names; keep them stable.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use app::domain::auth::{Role, Username, check_new_password};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::audit::{system_record, verify_chain};
use crate::auth::{accounts, password};
use crate::config::Config;
use crate::startup::{Application, bootstrap_admin, shutdown_signal};
use crate::store::NewUser;
use crate::telemetry;

#[derive(Parser, Debug)]
#[command(
    name = "switchyard",
    version,
    about = "Zero-downtime deployment campaigns: plan, run, watch, abort, audit."
)]
#[command(after_help = Config::help_text())]
pub struct Cli {
    /// Read settings from this TOML file (else $SWITCHYARD_CONFIG, if set)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the dashboard (creates the database and applies migrations if needed)
    Serve,
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect the audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create or update a draft campaign (or an environment) from a TOML or YAML file
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the plan a campaign file compiles to, as the server previews it
    Plan {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start or abort a campaign
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Check the backends the environments use
    #[command(subcommand)]
    Backends(BackendsCommand),
    /// Try gate definitions against what past campaigns recorded
    #[command(subcommand)]
    Gate(GateCommand),
    /// Write a consistent copy of the database to FILE (safe while the server runs)
    Backup {
        /// The new file (it must not exist yet)
        file: PathBuf,
    },
    /// Run the demo service: says its release in an `x-release` header; can fail or be slow
    DemoService {
        #[arg(long)]
        release: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Share of requests to fail with 500 (0–1)
        #[arg(long, default_value_t = 0.0)]
        fail_rate: f64,
        /// Delay every answer by this many milliseconds
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

/// Where the server is and how to authenticate, for the client commands.
#[derive(clap::Args, Debug)]
pub struct Remote {
    /// The server's URL
    #[arg(long, env = "SWITCHYARD_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// An API token (see `switchyard token create`)
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum CampaignCommand {
    /// Freeze the plan and start
    Start {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resume a paused campaign (or a paused rollback)
    Resume {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Create a draft copied from campaign ID, starting from what its pool runs now
    Clone {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Create a draft taking a succeeded campaign's pool back to the release it replaced
    RollbackRelease {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop and roll back until all traffic is on the from-release
    Abort {
        id: i64,
        /// Why (goes into the audit trail)
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum GateCommand {
    /// Replay a gate against campaign ID's stored samples: when would it have passed, waited or
    /// failed, and why (default: the campaign's own first gate)
    Replay {
        id: i64,
        /// A gate as TOML, YAML or JSON (max_error_rate, max_p99_ms, …)
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackendsCommand {
    /// Connect to every environment's backends and print what each answers; exit 1 if any
    /// could not be reached (nothing is changed)
    Check {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user (the password is read from standard input)
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for user NAME; prints only the token, once
    Create {
        /// The user the token acts as (with that user's role)
        name: String,
        /// A label for the token
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain; exit 0 when intact, 1 naming the first broken event
    Verify,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: app::domain::auth::UnknownRole| e.to_string())
}

/// Exit codes: 0 ok, 1 a check failed (audit verify, backends check), 2 bad configuration or usage.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve => serve(config).await,
        Command::DemoService { release, port, host, fail_rate, delay_ms } => {
            crate::demo_service::run(
                release,
                std::net::SocketAddr::new(host, port),
                fail_rate,
                delay_ms,
            )
            .await?;
            Ok(0)
        }
        c @ (Command::Apply { .. }
        | Command::Plan { .. }
        | Command::Campaign(_)
        | Command::Gate(_)
        | Command::Backends(_)) => client_command(c).await,
        Command::User(UserCommand::Add { name, role, password_stdin: _ }) => {
            let store = crate::store::connect(&config.database_url).await?;
            let name = Username::parse(&name).map_err(anyhow::Error::msg)?;
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("reading the password from standard input")?;
            let pw = input.lines().next().unwrap_or_default().to_string();
            if let Err(m) = check_new_password(&pw) {
                bail!("{m}");
            }
            let hash = password::hash(pw).await?;
            store
                .create_user(
                    NewUser {
                        username: name.as_str(),
                        password_hash: &hash,
                        role: role.as_str(),
                        must_change_password: false,
                    },
                    system_record(
                        "user.create",
                        format!("user:{name}"),
                        json!({ "role": role.as_str() }),
                    ),
                )
                .await?;
            eprintln!("added user {name} with role {role}");
            Ok(0)
        }
        Command::Token(TokenCommand::Create { name, label }) => {
            let store = crate::store::connect(&config.database_url).await?;
            let user = store
                .find_user_by_name(&name)
                .await?
                .with_context(|| format!("no user named '{name}'"))?;
            if user.disabled {
                bail!("user '{name}' is disabled");
            }
            let created = accounts::issue_token(
                &store,
                user.id,
                &label,
                system_record(
                    "token.create",
                    format!("user:{}", user.username),
                    json!({ "name": label }),
                ),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{}", created.secret);
            Ok(0)
        }
        Command::Backup { file } => {
            let store = crate::store::connect(&config.database_url).await?;
            store.backup_to(&file).await?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!("backed up {} to {} ({size} bytes)", config.database_url, file.display());
            println!(
                "to restore: stop the server, move the database and its -wal/-shm files aside, copy \
                 {} to the database's path (database_url), start the server, then run \
                 `switchyard audit verify`",
                file.display()
            );
            Ok(0)
        }
        Command::Audit(AuditCommand::Verify) => {
            let store = crate::store::connect(&config.database_url).await?;
            let report = verify_chain(&store).await?;
            match report.first_broken {
                None => {
                    println!("audit chain intact: {} events verified", report.events_checked);
                    Ok(0)
                }
                Some(b) => {
                    println!("audit chain BROKEN at event #{}: {}", b.event_id, b.reason);
                    Ok(1)
                }
            }
        }
    }
}

async fn client_command(command: Command) -> anyhow::Result<i32> {
    use crate::client::{Client, read_spec_file, render_backend_checks, render_plan};
    match command {
        Command::Apply { file, remote } => {
            let spec = read_spec_file(&file)?;
            println!("{}", Client::new(&remote.url, remote.token.as_deref())?.apply(&spec).await?);
        }
        Command::Plan { file, remote } => {
            let spec = read_spec_file(&file)?;
            print!(
                "{}",
                render_plan(&Client::new(&remote.url, remote.token.as_deref())?.plan(&spec).await?)
            );
        }
        Command::Campaign(CampaignCommand::Start { id, remote }) => {
            let s = Client::new(&remote.url, remote.token.as_deref())?
                .command(id, "start", None)
                .await?;
            println!("campaign #{id} is {}", s["status"].as_str().unwrap_or("?"));
        }
        Command::Campaign(CampaignCommand::Resume { id, remote }) => {
            let s = Client::new(&remote.url, remote.token.as_deref())?
                .command(id, "resume", None)
                .await?;
            println!("campaign #{id} is {}", s["status"].as_str().unwrap_or("?"));
        }
        Command::Campaign(
            c @ (CampaignCommand::Clone { .. } | CampaignCommand::RollbackRelease { .. }),
        ) => {
            let (id, remote, verb) = match c {
                CampaignCommand::Clone { id, remote } => (id, remote, "clone"),
                CampaignCommand::RollbackRelease { id, remote } => (id, remote, "rollback-release"),
                _ => bail!("not a draft command"),
            };
            let d =
                Client::new(&remote.url, remote.token.as_deref())?.command(id, verb, None).await?;
            let new = d["summary"]["id"].as_i64().unwrap_or_default();
            println!(
                "created draft #{new} {} ({} → {}); edit it at {}/campaigns/{new}/edit, start it with `switchyard campaign start {new}`",
                d["summary"]["name"].as_str().unwrap_or("?"),
                d["spec"]["from_release"].as_str().unwrap_or("?"),
                d["spec"]["to_release"].as_str().unwrap_or("?"),
                remote.url.trim_end_matches('/'),
            );
        }
        Command::Campaign(CampaignCommand::Abort { id, reason, remote }) => {
            let s = Client::new(&remote.url, remote.token.as_deref())?
                .command(id, "abort", Some(&reason))
                .await?;
            println!("campaign #{id} is {}", s["status"].as_str().unwrap_or("?"));
        }
        Command::Gate(GateCommand::Replay { id, file, remote }) => {
            let gate = file.as_deref().map(crate::client::read_spec_file).transpose()?;
            let r = Client::new(&remote.url, remote.token.as_deref())?
                .replay_gate(id, gate.as_ref())
                .await?;
            print!("{}", crate::client::render_replay(&r));
        }
        Command::Backends(BackendsCommand::Check { remote }) => {
            let report =
                Client::new(&remote.url, remote.token.as_deref())?.check_backends().await?;
            print!("{}", render_backend_checks(&report.backends));
            if report.backends.iter().any(crate::services::backends::BackendReport::unreachable) {
                return Ok(1);
            }
        }
        _ => bail!("not a client command"),
    }
    Ok(0)
}

async fn serve(config: Config) -> anyhow::Result<i32> {
    telemetry::init(config.log_format, &config.log_filter);
    let site = config.site_root.join("pkg").join("switchyard.js");
    if !site.exists() {
        tracing::warn!(
            path = %site.display(),
            "the browser client is not built: pages render but stay static; run scripts/run to build it"
        );
    }
    let app = Application::build(config).await?;
    if let Some(pw) = bootstrap_admin(&app.store).await? {
        println!("\nFirst run: created user 'admin' with the one-time password\n\n    {pw}\n");
        println!("Sign in with it; you will be asked to choose your own. It is not shown again.\n");
    }
    println!("Switchyard is listening on http://{}", app.addr);
    app.run_until(shutdown_signal()).await?;
    Ok(0)
}
