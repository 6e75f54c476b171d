//! `bmon parse-log FILE [--impl core|bsv|litecoin]`: one JSON event per line on stdout.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use bmon_logparse::{Parser, detect, event_json};
use bmon_schemas::NodeImplementation;
use clap::{Args, ValueEnum};

/// Lines read to detect the implementation when `--impl` is not given.
const DETECT_LINES: usize = 5000;

/// Node software, as the command line names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Impl {
    /// Bitcoin Core (0.10 to v31).
    Core,
    /// BSV node 1.0.x.
    Bsv,
    /// Litecoin Core 0.21.
    Litecoin,
}

/// Arguments of `bmon parse-log`.
#[derive(Debug, Args)]
pub struct ParseLogArgs {
    /// The debug.log (or bitcoind.log) to parse; `-` reads standard input.
    file: PathBuf,
    /// Which node wrote it; detected from the log when omitted.
    #[arg(long = "impl", value_enum)]
    implementation: Option<Impl>,
    /// Print only a count of events by kind instead of the events.
    #[arg(long)]
    summary: bool,
}

fn open(file: &PathBuf) -> anyhow::Result<Box<dyn Read>> {
    if file.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin()));
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    Ok(Box::new(f))
}

/// Reads lines as raw bytes (non-UTF-8 bytes are replaced, never fatal).
fn lines(file: &PathBuf) -> anyhow::Result<impl Iterator<Item = std::io::Result<Vec<u8>>>> {
    Ok(BufReader::with_capacity(1 << 20, open(file)?).split(b'\n'))
}

fn detect_implementation(file: &PathBuf) -> anyhow::Result<NodeImplementation> {
    if file.as_os_str() == "-" {
        return Ok(NodeImplementation::Core);
    }
    let sample: Vec<String> = lines(file)?
        .take(DETECT_LINES)
        .filter_map(Result::ok)
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect();
    Ok(detect(sample.iter().map(String::as_str)))
}

/// Runs `bmon parse-log`.
pub fn run(args: ParseLogArgs) -> anyhow::Result<()> {
    let implementation = match args.implementation {
        Some(Impl::Core) => NodeImplementation::Core,
        Some(Impl::Bsv) => NodeImplementation::Bsv,
        Some(Impl::Litecoin) => NodeImplementation::Litecoin,
        None => detect_implementation(&args.file)?,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    match write_events(&args, Parser::new(implementation), &mut out).and_then(|()| Ok(out.flush()?)) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            Ok(())
        }
        other => other,
    }
}

fn write_events(args: &ParseLogArgs, parser: Parser, out: &mut impl Write) -> anyhow::Result<()> {
    let mut events = Vec::new();
    let mut counts = std::collections::BTreeMap::<&'static str, u64>::new();
    for (i, line) in lines(&args.file)?.enumerate() {
        let line = line.with_context(|| format!("reading {}", args.file.display()))?;
        let text = String::from_utf8_lossy(&line);
        events.clear();
        let header = parser.parse_line(&text, &mut events);
        for event in &events {
            if args.summary {
                *counts.entry(bmon_logparse::kind(event)).or_default() += 1;
            } else {
                serde_json::to_writer(&mut *out, &event_json(i as u64 + 1, &header, event))
                    .map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
        }
    }
    if args.summary {
        writeln!(out, "{}", serde_json::to_string(&counts)?)?;
    }
    Ok(())
}
