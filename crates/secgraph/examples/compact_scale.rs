//! Benchmark: `compact` over a large synthetic export dataset, with the process's peak memory.
//!
//! ```sh
//! cargo run --release -p secgraph --example compact_scale -- 1000000
//! ```
//!
//! Writes N versions of N/4 alert ids (each id updated four times, spread over 30 dates, 50,000 rows a file, with a
//! title and description of a real alert's size), then compacts them and prints the time and peak RSS (VmHWM) before
//! and after. The bound to check: about 100 bytes per distinct id plus one data file, not the history's size.

use arrow_array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::sync::Arc;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    // The compaction runs in a process of its own, so its peak memory is its own.
    if args.get(1).map(String::as_str) == Some("compact") {
        let dir = args.get(2).ok_or("compact DIR")?;
        let t0 = std::time::Instant::now();
        let counts = secgraph::export::compact(&secgraph::export::Root::local(dir)).await?;
        println!(
            "compact: {} current rows in {:.1} s; peak RSS {:.0} MiB",
            counts.get("alerts_v2").copied().unwrap_or(0),
            t0.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
        return Ok(());
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let ids = (n / 4).max(1);
    let dir = tempfile::tempdir()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new(
            "lastUpdateDateTime",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("title", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
    ]));
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")?.timestamp_micros();
    let day = 86_400_000_000i64;
    let per_file = 50_000;
    let started = std::time::Instant::now();
    let mut written = 0;
    let mut file_no = 0;
    while written < n {
        let rows = per_file.min(n - written);
        let idx: Vec<usize> = (written..written + rows).collect();
        // Version v of id i: written as row v * ids + i, at day (v * 7 + i) % 30.
        let id: StringArray = idx
            .iter()
            .map(|r| Some(format!("da{:032x}", (r % ids) as u128 * 0x9e37_79b9_7f4a_7c15)))
            .collect();
        let t: TimestampMicrosecondArray = idx
            .iter()
            .map(|r| Some(base + ((r / ids) as i64) * day * 7 + (r % ids) as i64 * 1000))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC");
        let title: StringArray = idx
            .iter()
            .map(|r| Some(format!("Suspicious PowerShell command line {r}")))
            .collect();
        let description: StringArray = idx
            .iter()
            .map(|r| {
                Some(format!(
                    "{r}: {}",
                    "A process ran an encoded command that downloads and runs a payload. ".repeat(8)
                ))
            })
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(id), Arc::new(t), Arc::new(title), Arc::new(description)],
        )?;
        let date = format!("2026-11-{:02}", 1 + file_no % 30);
        let folder = dir.path().join(format!("stream=alerts_v2/tenant=t/date={date}"));
        std::fs::create_dir_all(&folder)?;
        let f = std::fs::File::create(folder.join(format!("part-0-{file_no}.parquet")))?;
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None)?;
        w.write(&batch)?;
        w.close()?;
        written += rows;
        file_no += 1;
    }
    let bytes: u64 = walk(dir.path());
    println!(
        "wrote {n} versions of {ids} ids in {file_no} files ({:.0} MiB) in {:.1} s; peak RSS so far {:.0} MiB",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("compact")
        .arg(dir.path())
        .status()?;
    if !status.success() {
        return Err("the compaction failed".into());
    }
    Ok(())
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
