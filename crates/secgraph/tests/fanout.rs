//! Across time and tenants: a split run equals the unsplit one row for row, in slice order; a fan-out equals each
//! tenant's own run, tagged; a failing tenant leaves a partial result with the others complete.

use secgraph::fanout::{Target, Tenants, connect_instances, connect_targets, fan_out, targets};
use secgraph::tenants::{TenantFilter, TenantsFile};
use secgraph::{ConnectOptions, QueryProvider, Row};
use secgraph_emulator::directory::Consent;
use secgraph_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use std::collections::BTreeMap;

async fn setup(alerts: usize) -> (Emulator, secgraph::config::Settings) {
    let emu = Emulator::start(EmulatorConfig {
        alerts,
        page_size: Some(30),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    (emu, s)
}

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn a_split_run_equals_the_unsplit_run_in_slice_order() {
    let (_emu, s) = setup(400).await;
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    let now = chrono::Utc::now();
    let (start, end) = (now - chrono::Duration::days(30), now);
    let stamp = |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let params = vec![("start".to_string(), stamp(start)), ("end".to_string(), stamp(end))];

    let mut whole: Vec<Row> = Vec::new();
    p.run("Alerts.list", &params, &mut whole).await.unwrap();
    assert!(whole.len() > 300);

    for (slice, parallel) in [(chrono::Duration::days(3), 4), (chrono::Duration::hours(20), 1)] {
        let mut split: Vec<Row> = Vec::new();
        let summary = p
            .run_split("Alerts.list", &[], (start, end), slice, parallel, &mut split)
            .await
            .unwrap();
        assert_eq!(summary.rows, split.len());
        // The same rows, none lost, none repeated.
        let mut a: Vec<String> = whole.iter().map(|r| r.id().unwrap().into_owned()).collect();
        let mut b: Vec<String> = split.iter().map(|r| r.id().unwrap().into_owned()).collect();
        let n = b.len();
        b.dedup();
        assert_eq!(b.len(), n, "no row twice");
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // In slice order: each row's slice index never goes back.
        let index = |r: &Row| {
            let c = t(r.to_value()["createdDateTime"].as_str().unwrap());
            (c - start).num_nanoseconds().unwrap() / slice.num_nanoseconds().unwrap()
        };
        let order: Vec<i64> = split.iter().map(index).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "rows out of slice order");
    }

    // A query without a time range cannot be split; the error says so.
    let e = p
        .run_split(
            "SecureScore.latest",
            &[],
            (start, end),
            chrono::Duration::days(1),
            2,
            &mut Vec::<Row>::new(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be split"), "{e}");
}

#[tokio::test]
async fn a_fan_out_equals_each_tenants_own_run_and_a_failure_is_partial() {
    let (_emu, s) = setup(90).await;
    let q = {
        let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
        p.render("Alerts.list", &[("start".into(), "-30d".into())]).unwrap()
    };
    let instances = vec![
        "Default".to_string(),
        "Fabrikam".to_string(),
        "NoRoles".to_string(),
        "Missing".to_string(),
    ];
    let providers = connect_instances(Some(&s), &instances, &ConnectOptions::default()).await;
    assert!(providers[3].1.is_err(), "an unknown instance fails to connect");

    // Each tenant alone.
    let mut alone: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (target, p) in &providers {
        if let Ok(p) = p {
            let mut rows: Vec<Row> = Vec::new();
            if p.run_rendered(&q, &mut rows).await.is_ok() {
                alone.insert(target.instance.clone(), rows.iter().map(|r| r.id().unwrap().into_owned()).collect());
            }
        }
    }
    assert_eq!(alone.len(), 2, "Default and Fabrikam answer; NoRoles lacks the role");

    let mut rows: Vec<Row> = Vec::new();
    let summary = fan_out(providers, &q, &mut rows).await.unwrap();
    assert!(summary.is_partial());
    let failed: Vec<&str> = summary.failures().map(|(i, _)| i).collect();
    assert_eq!(failed, ["NoRoles", "Missing"]);
    assert_eq!(summary.rows(), rows.len());

    let mut together: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        let v: Value = r.to_value();
        let instance = v["Instance"].as_str().unwrap().to_string();
        let tenant = v["TenantId"].as_str().unwrap();
        let outcome = summary.tenants.iter().find(|t| t.instance == instance).unwrap();
        assert_eq!(Some(tenant), outcome.tenant_id.as_deref());
        together.entry(instance).or_default().push(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(together, alone, "every tenant's rows, complete and in its own order");
}

/// An MSSP's emulator: customer tenants with their own data behind the multi-tenant app (instance `MSSP`, whose
/// `Args.Tenants` names the customers' tenants file).
async fn mssp(tenants: usize) -> (Emulator, secgraph::config::Settings) {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 40,
        tenants,
        alerts_per_tenant: Some(25),
        page_size: Some(10),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    (emu, s)
}

#[tokio::test]
async fn a_tenants_file_reads_each_tenant_as_its_own_run_and_names_the_ones_that_fail() {
    let (emu, s) = mssp(12).await;
    let all = TenantFilter::default();
    let targets = targets(Some(&s), &["MSSP".to_string()], None, &all).unwrap();
    assert_eq!(targets.len(), 12, "the instance's Args.Tenants names the file");
    let q = {
        let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
        p.render("Alerts.list", &[("start".into(), "-30d".into())]).unwrap()
    };
    let providers = connect_targets(Some(&s), &targets, &ConnectOptions::default()).await;
    let mut rows: Vec<Row> = Vec::new();
    let summary = fan_out(providers, &q, &mut rows).await.unwrap();

    let failed: Vec<(&str, String)> = summary.failures().map(|(n, e)| (n, e.to_string())).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].0, "Customer 0005");
    assert!(failed[0].1.contains("403"), "roles removed: {}", failed[0].1);
    assert_eq!(failed[1].0, "Customer 0010");
    assert!(failed[1].1.contains("AADSTS7000229"), "never consented: {}", failed[1].1);
    assert_eq!(summary.tenants[9].tenant_id.as_deref(), Some(emu.customers()[9].tenant_id.as_str()));

    // Every row's TenantId is the alert's own tenantId, and each tenant's rows are its own run's.
    let mut together: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        let v = r.to_value();
        assert_eq!(v["TenantId"], v["tenantId"], "{v}");
        assert_eq!(v["Instance"], "MSSP");
        together
            .entry(v["TenantId"].as_str().unwrap().to_string())
            .or_default()
            .push(v["id"].as_str().unwrap().into());
    }
    assert_eq!(together.len(), 10);
    for c in emu.customers() {
        let Some(ids) = together.get(&c.tenant_id) else { continue };
        let alone = QueryProvider::connect(
            Some(&s),
            &ConnectOptions {
                instance: Some("MSSP".into()),
                tenant_id: Some(c.tenant_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut own: Vec<Row> = Vec::new();
        alone.run_rendered(&q, &mut own).await.unwrap();
        let own: Vec<String> = own.iter().map(|r| r.id().unwrap().into_owned()).collect();
        assert_eq!(ids, &own, "{}", c.name);
        assert_eq!(own.len(), 25);
    }
}

#[tokio::test]
async fn tags_and_ids_choose_tenants_and_need_a_tenants_file() {
    let (emu, s) = mssp(12).await;
    let pick = |tags: &[&str], ids: &[&str]| TenantFilter {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        tenants: ids.iter().map(|t| t.to_string()).collect(),
    };
    let names = |f: TenantFilter| -> Vec<String> {
        targets(Some(&s), &["MSSP".to_string()], None, &f)
            .unwrap()
            .iter()
            .map(|t| t.label().to_string())
            .collect()
    };
    assert_eq!(names(pick(&["test"], &[])), ["Customer 0004", "Customer 0008", "Customer 0012"]);
    let second = emu.customers()[1].tenant_id.to_uppercase();
    assert_eq!(names(pick(&[], &[&second])), ["Customer 0002"]);
    let e = targets(Some(&s), &["Default".to_string()], None, &pick(&["prod"], &[])).unwrap_err();
    assert!(e.to_string().contains("needs a tenants file"), "{e}");
    let e = targets(Some(&s), &["MSSP".to_string()], None, &pick(&["nope"], &[])).unwrap_err();
    assert!(e.to_string().contains("no tenant matches tags nope"), "{e}");
    // A file given for the run replaces the instance's own.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.yaml");
    let (a, b) = (&emu.customers()[0], &emu.customers()[2]);
    std::fs::write(
        &file,
        format!("- tenant: {}\n  name: A\n- tenant: {}\n  name: B\n", a.tenant_id, b.tenant_id),
    )
    .unwrap();
    let f = TenantsFile::load(&file).unwrap();
    let t = targets(Some(&s), &["MSSP".to_string()], Some(&f), &TenantFilter::default()).unwrap();
    assert_eq!(t.iter().map(Target::label).collect::<Vec<_>>(), ["A", "B"]);
}

/// A sink that stops the run once it holds `want` rows from tenants other than `slow`, counting the slow one's.
struct UntilOthersDone {
    slow: String,
    want: usize,
    others: usize,
    slow_rows: usize,
}

impl secgraph::output::RowSink for UntilOthersDone {
    fn page(&mut self, rows: Vec<Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        for r in &rows {
            if r.to_value()["TenantId"] == self.slow.as_str() {
                self.slow_rows += 1;
            } else {
                self.others += 1;
            }
        }
        Ok(if self.others >= self.want {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        })
    }
}

/// One tenant that does not answer (its first alerts page hangs for ten minutes) holds only its own place: every
/// other tenant — more than are read at once — completes while it has delivered nothing.
#[tokio::test]
async fn a_tenant_that_hangs_holds_only_its_own_place() {
    let customers = secgraph_emulator::directory::customers(20, 42);
    let slow = customers[0].tenant_id.clone();
    let emu = Emulator::start(EmulatorConfig {
        alerts: 10,
        tenants: 20,
        alerts_per_tenant: Some(12),
        page_size: Some(5),
        faults: Some(secgraph_emulator::faults::FaultSpec::parse(&format!("alerts_v2:slow-first-byte(600000)@tenant={slow}")).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    const { assert!(20 > secgraph::fanout::TENANTS_IN_FLIGHT) };
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    let targets = targets(Some(&s), &["MSSP".to_string()], None, &TenantFilter::default()).unwrap();
    let q = QueryProvider::connect(Some(&s), &ConnectOptions::default())
        .await
        .unwrap()
        .render("Alerts.list", &[("start".into(), "-30d".into())])
        .unwrap();
    // Every customer that consented with its roles, but the hanging one.
    let readable = customers
        .iter()
        .filter(|c| matches!(c.consent, Consent::Granted | Consent::DetectionsReadOnly))
        .count()
        - 1;
    // Each tenant signs in when it gets its place (the path the CLI and Python take).
    let tenants = Tenants::SignIn {
        settings: Some(s.clone()),
        targets,
        options: ConnectOptions::default(),
    };
    let mut sink = UntilOthersDone {
        slow: slow.clone(),
        want: readable * 12,
        others: 0,
        slow_rows: 0,
    };
    fan_out(tenants, &q, &mut sink).await.unwrap();
    assert_eq!(sink.others, readable * 12, "every other readable tenant's alerts");
    assert_eq!(sink.slow_rows, 0, "the hanging tenant delivered nothing meanwhile");
}
