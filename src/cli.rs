//! Command line: clap arguments -> one function per command -> exit code.
//!
//! Data goes to stdout (the schema, JSON reports, GitHub annotations); everything
//! meant for people (problems in human form, progress) goes to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::render;
use crate::spec::{self, interpolate::EnvVars};

/// Declarative reconciler for Azure Machine Learning: a committed YAML manifest
/// describes a workspace, its registries, environments, clusters and jobs.
#[derive(Debug, Parser)]
#[command(name = "amlspec", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG, when set,
    /// takes precedence (e.g. RUST_LOG=amlspec=debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// When to use colour. `auto` colours only a terminal and honours NO_COLOR.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files without touching Azure. Exit 0 when valid, 1 when not.
    ///
    /// Reports every problem in every file at once, each with file:line:column, the key
    /// path and, where it helps, a hint. `${NAME}` references are expanded from the
    /// environment, so variables the spec uses must be set.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the manifest (for editors; committed as
    /// schemas/amlspec.schema.json).
    Schema,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Spec files, or folders whose *.yaml / *.yml files are specs (not recursive).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Output format: `human` text on stderr; `json` (versioned report) or `github`
    /// (workflow annotations on the offending lines) on stdout.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
    pub format: DiagnosticFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
    Github,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    let result = match cli.command {
        Command::Validate(args) => validate(args),
        Command::Schema => schema(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Output went away (a closed pipe): nothing more can be said.
            let _ = writeln!(anstream::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "amlspec=info",
        2 => "amlspec=debug",
        _ => "amlspec=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn validate(args: ValidateArgs) -> std::io::Result<ExitCode> {
    let ValidateArgs { paths, format } = args;
    let env = EnvVars::from_process();
    let loaded = spec::load(&paths, &env);
    match format {
        DiagnosticFormat::Human => {
            let mut stderr = anstream::stderr();
            let styled = !matches!(
                anstream::ColorChoice::global(),
                anstream::ColorChoice::Never
            );
            for problem in &loaded.problems {
                writeln!(
                    stderr,
                    "{}\n",
                    render::diagnostics::human(problem, &loaded.sources, styled)
                )?;
            }
            let summary = render::diagnostics::summary(&loaded.problems, loaded.files.len());
            if loaded.has_errors() {
                writeln!(stderr, "{summary}")?;
            } else {
                let mut stdout = anstream::stdout();
                if let Some(specs) = &loaded.specs {
                    for workspace in &specs.workspaces {
                        writeln!(stdout, "{}", render::workspace_line(workspace))?;
                    }
                }
                writeln!(stdout, "{summary}")?;
            }
        }
        DiagnosticFormat::Json => {
            write!(
                std::io::stdout(),
                "{}",
                render::diagnostics::json(&loaded.problems, &loaded.files)
            )?;
        }
        DiagnosticFormat::Github => {
            let mut stdout = std::io::stdout();
            for problem in &loaded.problems {
                writeln!(stdout, "{}", render::diagnostics::github(problem))?;
            }
        }
    }
    Ok(if loaded.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn schema() -> std::io::Result<ExitCode> {
    write!(std::io::stdout(), "{}", spec::schema::json_schema_text())?;
    Ok(ExitCode::SUCCESS)
}
