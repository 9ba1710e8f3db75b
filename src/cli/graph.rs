//! `graft graph load|query|update|dump|stats`.

use super::CliResult;
use crate::graph::format::{rdf_format_from_name, results_format_from_name};
use crate::graph::{
    parse_iri, GraphStore, GraphTarget, LoadOptions, QueryRequest, ResultFormat, SparqlOptions,
    UpdateRequest,
};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// Load RDF files with the bulk loader: all or nothing per file.
    ///
    /// The format comes from the extension (.ttl, .nt, .nq, .trig, .rdf/.owl,
    /// .jsonld; a trailing .gz is decompressed) unless --format says.
    Load(LoadArgs),
    /// Run a SPARQL query and print its results.
    ///
    /// SELECT/ASK results as json (default), xml, csv or tsv; CONSTRUCT/DESCRIBE
    /// results as turtle (default), ntriples, nquads, jsonld or rdfxml.
    Query(QueryArgs),
    /// Run a SPARQL update (one atomic write).
    Update(UpdateArgs),
    /// Write a graph, or the whole dataset, in an RDF format.
    Dump(DumpArgs),
    /// Triples per graph, the generation counter and the size on disk.
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// RDF files to load, each in its own atomic load.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Put the files' triples into this named graph (quad formats keep their own graphs).
    #[arg(long)]
    pub graph: Option<String>,
    /// Format of every file (turtle, ntriples, nquads, trig, jsonld, rdfxml, or a media type).
    #[arg(long)]
    pub format: Option<String>,
    /// Base IRI for relative IRIs in the files.
    #[arg(long)]
    pub base: Option<String>,
    /// Skip malformed statements (counted and reported) instead of refusing the file.
    #[arg(long)]
    pub lenient: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query; `-` or nothing reads it from standard input.
    pub query: Option<String>,
    /// Read the query from this file.
    #[arg(long, conflicts_with = "query")]
    pub file: Option<PathBuf>,
    /// Output format (json, xml, csv, tsv; turtle, ntriples, nquads, jsonld, rdfxml).
    #[arg(long)]
    pub format: Option<String>,
    /// The union of all graphs is the default graph (unless the query has FROM).
    #[arg(long)]
    pub union_default_graph: bool,
    /// Cancel the query after this many seconds.
    #[arg(long)]
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The update; `-` or nothing reads it from standard input.
    pub update: Option<String>,
    /// Read the update from this file.
    #[arg(long, conflicts_with = "update")]
    pub file: Option<PathBuf>,
    /// Allow `LOAD <url>` (the update fetches that URL).
    #[arg(long)]
    pub allow_federation: bool,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Dump only this named graph (default: the whole dataset, in a quad format).
    #[arg(long, conflicts_with = "default_graph")]
    pub graph: Option<String>,
    /// Dump only the default graph.
    #[arg(long = "default-graph")]
    pub default_graph: bool,
    /// Output format (nquads, trig for the dataset; any RDF format for one graph).
    #[arg(long)]
    pub format: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(data_dir: &Path, command: GraphCommand) -> CliResult {
    let store = GraphStore::open(data_dir)?;
    match command {
        GraphCommand::Load(args) => load(&store, args),
        GraphCommand::Query(args) => query(&store, args),
        GraphCommand::Update(args) => update(&store, args),
        GraphCommand::Dump(args) => dump(&store, args),
        GraphCommand::Stats(args) => stats(&store, &args),
    }
}

fn load(store: &GraphStore, args: LoadArgs) -> CliResult {
    let options = LoadOptions {
        graph: args.graph.as_deref().map(parse_iri).transpose()?,
        format: args
            .format
            .as_deref()
            .map(crate::graph::format::rdf_format_arg)
            .transpose()?,
        base_iri: args.base,
        lenient: args.lenient,
    };
    let mut failed = 0;
    for path in &args.files {
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(
                "{spinner} {msg} {human_pos} quads ({per_sec}, {elapsed})",
            )
            .expect("static template"),
        );
        bar.set_message(path.display().to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        let result = store.load_file(path, &options, &|n| bar.set_position(n));
        bar.finish_and_clear();
        match result {
            Ok(report) => {
                let rate = report.quads as f64 / (report.elapsed_ms.max(1) as f64 / 1000.0);
                eprintln!(
                    "loaded {}: {} quads in {:.1} s ({:.0} quads/s), generation {}",
                    path.display(),
                    report.quads,
                    report.elapsed_ms as f64 / 1000.0,
                    rate,
                    report.generation
                );
                if report.skipped > 0 {
                    eprintln!(
                        "  skipped {} parse errors (--lenient); first: {}",
                        report.skipped,
                        report.first_error.unwrap_or_default()
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {e}\n  nothing from {} was loaded", path.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} files failed to load", args.files.len()).into());
    }
    Ok(())
}

/// The text of a query or update: the argument, a file, or standard input.
fn read_text(
    arg: Option<String>,
    file: Option<PathBuf>,
) -> Result<String, Box<dyn std::error::Error>> {
    match (arg, file) {
        (Some(text), None) if text != "-" => Ok(text),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()).into()),
        _ => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Ok(text)
        }
    }
}

fn query(store: &GraphStore, args: QueryArgs) -> CliResult {
    let text = read_text(args.query, args.file)?;
    let timeout = args.timeout_s.map(Duration::from_secs);
    let options = SparqlOptions {
        allow_federation: false,
        union_default_graph: args.union_default_graph,
        timeout,
    };
    let prepared = store.prepare_query(
        &QueryRequest {
            query: text,
            ..QueryRequest::default()
        },
        &options,
    )?;
    let format = match (&args.format, prepared.form().returns_graph()) {
        (None, false) => ResultFormat::Results(crate::graph::QueryResultsFormat::Json),
        (None, true) => ResultFormat::Rdf(crate::graph::RdfFormat::Turtle),
        (Some(name), false) => ResultFormat::Results(results_format_from_name(name).ok_or_else(|| {
            format!("{name:?} is not a format for SELECT/ASK results: use json, xml, csv or tsv")
        })?),
        (Some(name), true) => ResultFormat::Rdf(rdf_format_from_name(name).ok_or_else(|| {
            format!("{name:?} is not an RDF format for CONSTRUCT/DESCRIBE results: use turtle, ntriples, nquads, jsonld or rdfxml")
        })?),
    };
    if let Some(timeout) = timeout {
        let token = prepared.cancellation_token();
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            token.cancel();
        });
    }
    let stdout = std::io::stdout().lock();
    let mut out = prepared.execute_to(store, format, std::io::BufWriter::new(stdout))?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

fn update(store: &GraphStore, args: UpdateArgs) -> CliResult {
    let text = read_text(args.update, args.file)?;
    let start = Instant::now();
    store.update(
        &UpdateRequest {
            update: text,
            ..UpdateRequest::default()
        },
        &SparqlOptions {
            allow_federation: args.allow_federation,
            ..SparqlOptions::default()
        },
        &crate::graph::WriteCancellation::new(),
    )?;
    eprintln!(
        "update done in {} ms, generation {}",
        start.elapsed().as_millis(),
        store.generation()
    );
    Ok(())
}

fn dump(store: &GraphStore, args: DumpArgs) -> CliResult {
    let format = crate::graph::format::rdf_format_arg(&args.format)?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = std::io::BufWriter::new(out);
    let target = match (args.graph, args.default_graph) {
        (Some(iri), _) => Some(GraphTarget::Named(parse_iri(&iri)?)),
        (None, true) => Some(GraphTarget::Default),
        (None, false) => None,
    };
    let mut out = match target {
        Some(target) => store.read_graph(&target, format, out)?,
        None => store.dump_dataset(format, out)?,
    };
    out.flush()?;
    Ok(())
}

fn stats(store: &GraphStore, args: &StatsArgs) -> CliResult {
    let stats = store.stats()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    println!("{:>12}  graph", "triples");
    for g in &stats.graphs {
        println!(
            "{:>12}  {}",
            g.triples,
            g.graph.as_deref().unwrap_or("(default graph)")
        );
    }
    println!("{:>12}  total quads", stats.quads);
    println!("generation: {}", stats.generation);
    println!(
        "size on disk: {:.1} MiB ({} bytes)",
        stats.size_on_disk_bytes as f64 / (1 << 20) as f64,
        stats.size_on_disk_bytes
    );
    Ok(())
}
