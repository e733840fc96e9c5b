use clap::Parser;
use server::cli::{Cli, run};
use server::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(cli, config).await {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
