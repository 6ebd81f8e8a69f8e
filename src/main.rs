//! The `backstop` command: parse the command line, load the configuration,
//! bind the admin listener, and hand over to the library.
//! Exit codes: 0 ok, 2 invalid configuration or usage, 1 runtime failure.

use anyhow::Context;
use backstop::telemetry::otlp::Traces;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long the last spans get to leave on shutdown.
const FLUSH_GRACE: Duration = Duration::from_millis(300);

#[derive(Parser)]
#[command(
    name = "backstop",
    version,
    about = "Probe a service, watch its SLOs, roll back a bad release"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar (the default).
    Run(RunArgs),
    /// Validate a configuration file; print every problem (exit 2) and
    /// every warning (valid, but almost certainly meant otherwise; exit 0).
    CheckConfig(CheckArgs),
    /// Start a sample app, break it, and watch backstop roll it back.
    Demo,
    /// Print Prometheus recording rules and multi-window burn-rate alerts
    /// for the SLOs in a configuration file.
    AlertRules {
        /// The YAML file whose SLOs to alert on.
        file: PathBuf,
        /// Wrap the rule groups in a prometheus-operator PrometheusRule.
        #[arg(long)]
        prometheus_rule: bool,
        /// Rules for every service's sidecars, not only the file's `service`.
        #[arg(long)]
        all_services: bool,
    },
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The YAML file to check (or --config FILE, or BACKSTOP_CONFIG, as for `run`).
    file: Option<PathBuf>,
    /// Configuration file.
    #[arg(long, short, env = "BACKSTOP_CONFIG")]
    config: Option<PathBuf>,
    /// Check without the environment (in CI): structure, references, units
    /// and patterns; list the ${VARS} and files a start would need instead
    /// of reading them.
    #[arg(long)]
    offline: bool,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Configuration file.
    #[arg(long, short, env = "BACKSTOP_CONFIG")]
    config: Option<PathBuf>,
    /// The revision being guarded (outside Kubernetes), e.g. the release's
    /// version; its age counts from process start. Without it every release
    /// is "unnamed", and backstop warns.
    #[arg(long, env = "BACKSTOP_REVISION")]
    revision: Option<String>,
    /// How often the configuration file is checked for changes (a new
    /// configuration also loads on SIGHUP).
    #[arg(long, default_value = "5s", value_parser = positive_duration)]
    watch_interval: Duration,
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match backstop::config::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be above 0 (like 5s)".into()),
        other => other,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    backstop::init_tls();
    match cli.command {
        Some(Command::CheckConfig(args)) => check_config(args),
        Some(Command::Demo) => {
            runtime(async { backstop::demo::run().await.map(|()| ExitCode::SUCCESS) })
        }
        Some(Command::AlertRules {
            file,
            prometheus_rule,
            all_services,
        }) => alert_rules(
            &file,
            backstop::alert_rules::Options {
                prometheus_rule,
                all_services,
            },
        ),
        Some(Command::Run(args)) => run(args),
        None => run(cli.run),
    }
}

/// The configuration at `file`, or every problem printed and exit status 2.
fn load_or_report(file: &Path) -> Result<backstop::config::Config, ExitCode> {
    let checked = backstop::config::check_file(file, false);
    match checked.config {
        Some(config) if checked.errors.is_empty() => Ok(config),
        _ => {
            report_problems(file, &checked.errors);
            Err(ExitCode::from(2))
        }
    }
}

fn report_problems(file: &Path, errors: &[backstop::config::ConfigError]) {
    eprintln!("{}: {} problem(s):", file.display(), errors.len());
    for e in errors {
        eprintln!("  {}", e.located());
    }
}

fn check_config(args: CheckArgs) -> ExitCode {
    let Some(file) = args.file.or(args.config) else {
        eprintln!(
            "backstop check-config: no configuration: name the file, pass --config FILE or set BACKSTOP_CONFIG"
        );
        return ExitCode::from(2);
    };
    let checked = backstop::config::check_file(&file, args.offline);
    let valid = checked.errors.is_empty();
    if !valid {
        report_problems(&file, &checked.errors);
    }
    for w in &checked.warnings {
        eprintln!("warning: {}", w.located());
    }
    if !valid {
        return ExitCode::from(2);
    }
    let [targets, slos, rules] = checked.counts;
    let warnings = match checked.warnings.len() {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    println!(
        "{}: valid{} ({targets} targets, {slos} SLOs, {rules} rules{warnings})",
        file.display(),
        if args.offline { " offline" } else { "" },
    );
    if args.offline {
        print_needed(&checked);
    }
    ExitCode::SUCCESS
}

/// What an offline check left to the environment, one line per variable or
/// file with every place it is used.
fn print_needed(checked: &backstop::config::Checked) {
    if checked.variables.is_empty() && checked.files.is_empty() {
        println!("needs nothing from the environment");
        return;
    }
    println!("needs from the environment to start:");
    for (kind, list) in [("variable", &checked.variables), ("file", &checked.files)] {
        let mut names: Vec<&str> = Vec::new();
        for n in list.iter() {
            if !names.contains(&n.name.as_str()) {
                names.push(&n.name);
            }
        }
        for name in names {
            let at: Vec<&str> = list
                .iter()
                .filter(|n| n.name == name)
                .map(|n| n.at.as_str())
                .collect();
            println!("  {kind} {name} (at {})", at.join(", "));
        }
    }
}

fn alert_rules(file: &Path, options: backstop::alert_rules::Options) -> ExitCode {
    match load_or_report(file) {
        Ok(c) => {
            print!("{}", backstop::alert_rules::generate(&c, options));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(args: RunArgs) -> ExitCode {
    let Some(path) = args.config else {
        eprintln!(
            "backstop: no configuration: pass --config FILE or set BACKSTOP_CONFIG (or try `backstop demo`)"
        );
        return ExitCode::from(2);
    };
    let checked = backstop::config::check_file(&path, false);
    let config = match checked.config {
        Some(config) if checked.errors.is_empty() => config,
        _ => {
            report_problems(&path, &checked.errors);
            return ExitCode::from(2);
        }
    };
    let warnings = checked.warnings;
    let kubernetes = match &config.rollback.backend {
        Some(backstop::config::RollbackBackend::Kubernetes(k)) => Some(k.clone()),
        _ => None,
    };
    let mut options = match args.revision {
        Some(revision) => backstop::Options::new(revision),
        None => backstop::Options::unnamed(),
    };
    runtime(async move {
        let otlp = config.otlp.as_ref();
        let endpoint = otlp.and_then(|o| o.endpoint.as_ref());
        let traces = Traces::from_config(endpoint, otlp.is_some(), &config.service)
            .map_err(anyhow::Error::msg)?;
        backstop::telemetry::init_logs("info", traces.as_ref().map(Traces::tracer));
        for w in &warnings {
            tracing::warn!(
                path = w.named.as_deref().unwrap_or(&w.path),
                "configuration: {}",
                w.message
            );
        }
        if let Some(k) = &kubernetes {
            // Without a client backstop still probes and pages (page-only
            // mode, loud on /status): exiting would take the app's pod down.
            match in_cluster(k).await {
                Ok(c) => options.kubernetes = Some(c),
                Err(e) => options.not_in_pod = Some(format!("{e:#}")),
            }
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the admin server to {}", config.listen))?;
        let watch = Some((path, args.watch_interval));
        backstop::run(config, listener, options, shutdown_signal(), watch).await?;
        if let Some(traces) = traces {
            // Bounded: a collector that is down must not hold up the exit.
            let _ = tokio::time::timeout(FLUSH_GRACE, traces.shutdown()).await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// This pod, from the downward API, and the in-cluster client.
async fn in_cluster(
    k: &backstop::config::Kubernetes,
) -> anyhow::Result<backstop::cluster::Connection> {
    let var = |name: &str| {
        std::env::var(name).with_context(|| {
            format!(
                "rollback.kubernetes needs {name} from the downward API \
                 (env: valueFrom.fieldRef; see k8s/components/backstop/sidecar.yaml)"
            )
        })
    };
    let (pod, namespace) = (var("POD_NAME")?, var("POD_NAMESPACE")?);
    let config = kube::Config::infer()
        .await
        .context("finding the Kubernetes API (in-cluster service account or kubeconfig)")?;
    let config = backstop::cluster::with_token_file(config, k.token_file.as_deref());
    let client = kube::Client::try_from(config).context("building the Kubernetes API client")?;
    Ok(backstop::cluster::Connection {
        client,
        namespace,
        pod,
    })
}

fn runtime(f: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("backstop: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(f);
    // Whatever still runs (a span flush stuck on a dead collector) must not
    // hold up the exit.
    rt.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "backstop failed");
            eprintln!("backstop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
/// The handlers are installed at the call, before anything starts, so a
/// SIGTERM during start-up is a clean stop too.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = tokio::signal::ctrl_c();
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops backstop");
                let _ = int.await;
            }
        }
    }
}
