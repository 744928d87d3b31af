//! Typed results against the emulator: Parquet and Arrow files read back with the entity's schema and every row;
//! JSON outputs carry the service's bytes; every output format agrees on the rows; a fault during a multi-page export
//! leaves either the whole file or no file under the final name.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use secgraph::batches::schema::{ALERT_V2, INCIDENT};
use secgraph::output::{ArrowFileSink, CsvSink, Destination, FileFormat, JsonLinesSink};
use secgraph::query::RenderedQuery;
use secgraph::{ConnectOptions, QueryProvider, Row};
use secgraph_emulator::faults::FaultSpec;
use secgraph_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use std::path::Path;

async fn provider(alerts: usize, faults: Option<&str>) -> (Emulator, QueryProvider) {
    let emu = Emulator::start(EmulatorConfig {
        alerts,
        page_size: Some(40),
        faults: faults.map(|f| FaultSpec::parse(f).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    (emu, p)
}

fn odata(path: &str) -> RenderedQuery {
    RenderedQuery {
        name: "test".into(),
        language: secgraph::query::Language::OData,
        text: path.into(),
        timespan: None,
        max_rows: None,
        match_evidence: None,
    }
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn read_stream(bytes: &[u8]) -> Vec<RecordBatch> {
    arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn ids(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("id").unwrap().as_string::<i32>().clone();
            (0..c.len()).map(move |i| c.value(i).to_string())
        })
        .collect()
}

#[tokio::test]
async fn parquet_and_arrow_read_back_with_the_entity_schema_and_every_row() {
    let (_emu, p) = provider(150, None).await;
    let dir = tempfile::tempdir().unwrap();
    let q = odata("/security/alerts_v2");

    let mut rows: Vec<Row> = Vec::new();
    let s = p.run_rendered(&q, &mut rows).await.unwrap();
    assert_eq!((s.rows, s.pages), (150, 4));
    let want_ids: Vec<String> = rows.iter().map(|r| r.id().unwrap().into_owned()).collect();

    let file = dir.path().join("alerts.parquet");
    let mut sink = ArrowFileSink::new(
        FileFormat::Parquet,
        QueryProvider::batch_builder(&q),
        Destination::Path(file.clone()),
    )
    .unwrap();
    p.run_rendered(&q, &mut sink).await.unwrap();
    let batches = read_parquet(&file);
    assert_eq!(ids(&batches), want_ids);
    let schema = batches[0].schema();
    // Every documented column, in order, typed.
    for (i, (name, _)) in ALERT_V2.iter().enumerate() {
        assert_eq!(schema.field(i).name(), name);
    }
    assert_eq!(
        schema.field_with_name("createdDateTime").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert!(matches!(
        schema.field_with_name("severity").unwrap().data_type(),
        DataType::Dictionary(..)
    ));
    assert!(matches!(
        schema.field_with_name("mitreTechniques").unwrap().data_type(),
        DataType::List(_)
    ));
    // Values agree with the JSON the service sent.
    let first: Value = rows[0].to_value();
    let created = batches[0]
        .column_by_name("createdDateTime")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    let want = chrono::DateTime::parse_from_rfc3339(first["createdDateTime"].as_str().unwrap()).unwrap();
    assert_eq!(created, want.timestamp_micros());
    let title = batches[0].column_by_name("title").unwrap().as_string::<i32>().value(0).to_string();
    assert_eq!(title, first["title"].as_str().unwrap());
    let evidence = batches[0]
        .column_by_name("evidence")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert_eq!(serde_json::from_str::<Value>(&evidence).unwrap(), first["evidence"]);
    // No temporary file is left beside the result.
    assert_eq!(names(dir.path()), ["alerts.parquet"]);

    // The Arrow stream, to a writer, holds the same rows under the same schema.
    let buf = common::SharedBuf::default();
    let mut sink = ArrowFileSink::new(
        FileFormat::ArrowStream,
        QueryProvider::batch_builder(&q),
        Destination::Writer(Box::new(buf.clone())),
    )
    .unwrap();
    p.run_rendered(&q, &mut sink).await.unwrap();
    let streamed = read_stream(&buf.0.lock().unwrap());
    assert_eq!(ids(&streamed), want_ids);
    assert_eq!(streamed[0].schema(), schema);

    // In memory: the same.
    let (mem_schema, mem) = p.record_batches(&q).await.unwrap();
    assert_eq!(ids(&mem), want_ids);
    assert_eq!(mem_schema, schema);
}

#[tokio::test]
async fn json_lines_carry_the_services_bytes_and_every_format_agrees() {
    let (emu, p) = provider(90, None).await;
    let q = odata("/security/incidents?$expand=alerts");

    // JSON lines: each line is an item exactly as the service wrote it.
    let buf = common::SharedBuf::default();
    let mut sink = JsonLinesSink::new(buf.clone());
    p.run_rendered(&q, &mut sink).await.unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let raw = reqwest_like_fetch_all(&emu, &p, "/security/incidents?$expand=alerts").await;
    assert_eq!(lines, raw.iter().map(String::as_str).collect::<Vec<_>>());

    // CSV, Parquet and in-memory batches hold the same number of rows, with the same ids in order.
    let mut csv = Vec::new();
    let mut sink = CsvSink::new(&mut csv, QueryProvider::batch_builder(&q), vec!["id".into()]).unwrap();
    p.run_rendered(&q, &mut sink).await.unwrap();
    let csv_ids: Vec<String> = String::from_utf8(csv).unwrap().lines().skip(1).map(str::to_string).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("incidents.parquet");
    let mut sink = ArrowFileSink::new(
        FileFormat::Parquet,
        QueryProvider::batch_builder(&q),
        Destination::Path(file.clone()),
    )
    .unwrap();
    p.run_rendered(&q, &mut sink).await.unwrap();
    let pq = read_parquet(&file);
    let line_ids: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!line_ids.is_empty());
    assert_eq!(csv_ids, line_ids);
    assert_eq!(ids(&pq), line_ids);
    assert_eq!(pq[0].schema().field(0).name(), INCIDENT[0].0);
    let alerts = pq[0].column_by_name("alerts").unwrap().as_string::<i32>();
    assert!(serde_json::from_str::<Value>(alerts.value(0)).unwrap().is_array());
}

/// The `value` items of every page, as text, fetched with the provider's own client but without the pager.
async fn reqwest_like_fetch_all(_emu: &Emulator, p: &QueryProvider, path: &str) -> Vec<String> {
    let mut rows: Vec<Row> = Vec::new();
    p.exec(path, &mut rows).await.unwrap();
    rows.iter().map(|r| r.json().to_string()).collect()
}

#[tokio::test]
async fn an_empty_result_still_has_the_entitys_columns() {
    let (_emu, p) = provider(20, None).await;
    let q = odata("/security/alerts_v2?$filter=assignedTo eq 'nobody@example.invalid'");
    let (schema, batches) = p.record_batches(&q).await.unwrap();
    assert_eq!(schema.fields().len(), ALERT_V2.len());
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("none.parquet");
    let mut sink = ArrowFileSink::new(
        FileFormat::Parquet,
        QueryProvider::batch_builder(&q),
        Destination::Path(file.clone()),
    )
    .unwrap();
    p.run_rendered(&q, &mut sink).await.unwrap();
    let back = read_parquet(&file);
    let f = std::fs::File::open(&file).unwrap();
    let meta = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    assert_eq!(meta.schema().fields().len(), ALERT_V2.len());
    assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[tokio::test]
async fn hunting_results_take_the_declared_column_types() {
    let (_emu, p) = provider(30, None).await;
    let q = p
        .render(
            "Hunting.run",
            &[("query".into(), "AlertInfo | project Timestamp, AlertId, Severity | take 5".into())],
        )
        .unwrap();
    let (schema, batches) = p.record_batches(&q).await.unwrap();
    assert_eq!(
        schema.field_with_name("Timestamp").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(schema.field(0).name(), "Timestamp");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
}

/// A fault kind the emulator injects, during a multi-page Parquet export (once, and on every other page): the whole
/// file once, or an error and nothing under the final name (and no temporary file left behind).
async fn parquet_export_under_fault(kind: &str) {
    for when in ["nth=2", "every=2"] {
        let spec = format!("alerts_v2:{kind}@{when}");
        let (_emu, p) = provider(120, Some(&spec)).await;
        let q = odata("/security/alerts_v2");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.parquet");
        let mut sink = ArrowFileSink::new(
            FileFormat::Parquet,
            QueryProvider::batch_builder(&q),
            Destination::Path(file.clone()),
        )
        .unwrap();
        let result = p.run_rendered(&q, &mut sink).await;
        let left = names(dir.path());
        match result {
            Ok(_) => {
                let got = ids(&read_parquet(&file));
                let mut unique = got.clone();
                unique.sort();
                unique.dedup();
                assert_eq!((got.len(), unique.len()), (120, 120), "{spec}: every row once");
                assert_eq!(left, ["out.parquet"], "{spec}");
            }
            Err(e) => {
                drop(sink);
                let left = names(dir.path());
                assert!(left.is_empty(), "{spec}: {e} but left {left:?}");
            }
        }
    }
}

/// One test per fault kind (each a few seconds; they run in parallel).
macro_rules! parquet_export_fault_tests {
    ($($name:ident => $kind:literal,)+) => {
        $(
            #[tokio::test]
            async fn $name() {
                parquet_export_under_fault($kind).await;
            }
        )+
    };
}

parquet_export_fault_tests! {
    parquet_export_under_throttling_gives_the_whole_file_or_none => "429(0.1)",
    parquet_export_under_500_gives_the_whole_file_or_none => "500",
    parquet_export_under_503_gives_the_whole_file_or_none => "503(0.1)",
    parquet_export_under_504_gives_the_whole_file_or_none => "504(0.1)",
    parquet_export_under_reset_gives_the_whole_file_or_none => "reset",
    parquet_export_under_truncation_gives_the_whole_file_or_none => "truncate",
    parquet_export_under_token_expiry_gives_the_whole_file_or_none => "expire-token",
    parquet_export_under_a_repeated_next_link_gives_the_whole_file_or_none => "repeat-next-link",
    parquet_export_under_a_duplicated_item_gives_the_whole_file_or_none => "duplicate-item",
}

#[tokio::test]
async fn a_limit_asks_for_small_pages() {
    let (emu, p) = provider(100, None).await;
    let q = RenderedQuery {
        max_rows: Some(7),
        ..odata("/security/alerts_v2")
    };
    let mut rows: Vec<Row> = Vec::new();
    let before = emu.requests_to("/security/alerts_v2");
    p.run_rendered(&q, &mut rows).await.unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(emu.requests_to("/security/alerts_v2") - before, 1);
}
