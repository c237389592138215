//! The commands of the `buzzer` binary.
//!
//! `buzzer serve` runs the server over an embedded store; `jobs`, `queues` and `dlq` are
//! operator commands that talk to a running server over its HTTP API. The binary's `main.rs`
//! only calls [`main`].
//!
//! ```text
//! buzzer serve [--listen 127.0.0.1:2899] [--database sqlite:buzzer.db] [--api-key KEY]…
//! buzzer [--server URL] [--api-key KEY] [--json] jobs get ID
//! buzzer queues pause emails
//! buzzer dlq retry emails --tag welcome
//! ```

mod bench;
mod commands;
mod database_url;
mod http_client;
mod listen;
mod logging;
mod migrate;
#[cfg(feature = "otlp")]
mod otlp;
mod output;
mod postgres;
mod serve;

use std::{process::ExitCode, time::Duration};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource};

use commands::{
    Context, dlq::DlqCommand, jobs::JobsCommand, queues::QueuesArgs, schedules::SchedulesArgs,
    topics::SubscriptionsArgs,
};
use http_client::ApiClient;

/// Buzzer: a durable job queue. Now, or later?
#[derive(Debug, Parser)]
#[command(name = "buzzer", version, max_term_width = 100)]
pub struct Cli {
    /// Server that operator commands talk to.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "BUZZER_SERVER",
        default_value = "http://127.0.0.1:2899",
        value_name = "URL"
    )]
    server: String,
    /// API key. `serve` accepts any of the keys given (repeat the flag, or separate keys with
    /// commas); operator commands send the first one as `Authorization: Bearer KEY`.
    #[arg(
        long = "api-key",
        global = true,
        help_heading = "Global options",
        env = "BUZZER_API_KEY",
        value_name = "KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Vec<String>,
    /// Operator commands: print one JSON document on stdout instead of tables (for scripts).
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: the HTTP API and the background services over one database.
    Serve(serve::ServeArgs),
    /// Bring the database's schema up to this build's version, then exit.
    Migrate(migrate::MigrateArgs),
    /// Look at jobs, cancel them, retry dead or cancelled ones.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Queues with their counts per state; pause and resume them.
    Queues(QueuesArgs),
    /// The dead-letter queue: list dead jobs and replay them.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Topics that have subscriptions.
    Topics,
    /// Topic subscriptions (queues and webhooks): list, create, delete.
    Subscriptions(SubscriptionsArgs),
    /// Cron schedules: list, create, delete.
    Schedules(SchedulesArgs),
    /// Measure this build on the standard workloads (W1 drain, W2 stream, W3 hybrid call).
    Bench(bench::BenchArgs),
    /// The worker process of `bench --mode http`.
    #[command(hide = true)]
    BenchWorker(bench::worker::BenchWorkerArgs),
    /// The checkout demo: sync vs async vs hybrid, live at /demo or as a measured report.
    Demo(buzzer_demo::DemoArgs),
}

/// Parses the command line, runs the command and turns any error into `error: …` on stderr
/// and exit code 1 (usage errors exit 2, from clap).
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // `bench --mode http` targets `--server` only when it was named on the command line;
    // otherwise it starts a server of its own.
    let server_named = matches.value_source("server") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, server_named) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, server_named: bool) -> anyhow::Result<()> {
    // An empty entry (`BUZZER_API_KEY=` or `a,,b`) is not a key anyone can send.
    let api_keys: Vec<String> = cli
        .api_keys
        .into_iter()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    let runtime = match &cli.command {
        Command::Serve(_) | Command::Demo(_) | Command::Bench(_) | Command::BenchWorker(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        // An operator command makes a few sequential calls: one thread is plenty.
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()?;

    let result = runtime.block_on(async {
        let ctx = match cli.command {
            Command::Serve(args) => {
                let telemetry = logging::init(args.log_format)?;
                let served = serve::run(args, api_keys).await;
                telemetry.shutdown();
                return served;
            }
            Command::Migrate(args) => return migrate::run(args).await,
            Command::Demo(args) => return buzzer_demo::run(args).await,
            Command::Bench(args) => {
                let ctx = bench::BenchContext {
                    server: server_named.then(|| cli.server.clone()),
                    api_key: api_keys.first().cloned(),
                    json: cli.json,
                };
                return bench::run(args, ctx).await;
            }
            Command::BenchWorker(args) => {
                return bench::worker::run(args, &cli.server, api_keys.first().map(String::as_str))
                    .await;
            }
            _ => Context {
                client: ApiClient::new(&cli.server, api_keys.into_iter().next())?,
                json: cli.json,
            },
        };
        match cli.command {
            Command::Serve(_)
            | Command::Migrate(_)
            | Command::Demo(_)
            | Command::Bench(_)
            | Command::BenchWorker(_) => Ok(()),
            Command::Jobs(cmd) => commands::jobs::run(cmd, &ctx).await,
            Command::Queues(args) => commands::queues::run(args, &ctx).await,
            Command::Dlq(cmd) => commands::dlq::run(cmd, &ctx).await,
            Command::Topics => commands::topics::topics(&ctx).await,
            Command::Subscriptions(args) => commands::topics::subscriptions(args, &ctx).await,
            Command::Schedules(args) => commands::schedules::run(args, &ctx).await,
        }
    });
    // Blocking tasks (store reads) have finished by now; don't wait on a stray one forever.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "buzzer",
            "jobs",
            "get",
            "0000000000001",
            "--json",
            "--server",
            "http://h:1",
            "--api-key",
            "k",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.server, "http://h:1");
        assert_eq!(cli.api_keys, vec!["k"]);
        let cli = Cli::try_parse_from(["buzzer", "--api-key", "a,b", "serve"]).unwrap();
        assert_eq!(cli.api_keys, vec!["a", "b"]);
        let cli = Cli::try_parse_from([
            "buzzer",
            "serve",
            "--api-key",
            "a",
            "--api-key",
            "b",
            "--listen",
            "0.0.0.0:0",
        ])
        .unwrap();
        assert_eq!(cli.api_keys, vec!["a", "b"]);
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.listen, "0.0.0.0:0");
        assert_eq!(args.max_body, 1024 * 1024);
        assert_eq!(args.sqlite_synchronous, serve::SyncMode::Full);
        assert_eq!(args.log_format, logging::LogFormat::Text);
        let cli = Cli::try_parse_from(["buzzer", "serve", "--log-format", "json"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.log_format, logging::LogFormat::Json);
        assert!(Cli::try_parse_from(["buzzer", "serve", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn queues_lists_by_default() {
        let cli = Cli::try_parse_from(["buzzer", "queues"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Queues(QueuesArgs { command: None })
        ));
        assert!(Cli::try_parse_from(["buzzer", "queues", "pause", "emails"]).is_ok());
        assert!(Cli::try_parse_from(["buzzer", "jobs", "list", "--state", "nope"]).is_err());
        assert!(Cli::try_parse_from(["buzzer", "dlq", "list"]).is_ok());
        assert!(Cli::try_parse_from(["buzzer", "dlq", "retry"]).is_err());
    }
}
