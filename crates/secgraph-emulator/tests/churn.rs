//! Data that changes while it is read: changes applied on demand, exactly the changed alerts found by
//! `lastUpdateDateTime`, and Graph's paging model (a skip token is a position) reproduced both ways.

mod common;

use secgraph_emulator::EmulatorConfig;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn setup() -> (secgraph_emulator::Emulator, reqwest::Client, String) {
    common::start_with_graph_token(EmulatorConfig {
        alerts: 120,
        ..Default::default()
    })
    .await
}

async fn all_ids(c: &reqwest::Client, token: &str, first: String) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next.take() {
        let page: Value = c.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        out.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string()),
        );
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    out
}

async fn churn(emu: &secgraph_emulator::Emulator, c: &reqwest::Client, new: usize, update: usize) -> Value {
    c.post(format!("{}/_emulator/churn", emu.base_url()))
        .json(&json!({"new": new, "update": update}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn after_n_changes_last_update_filters_return_exactly_the_changed_alerts() {
    let (emu, c, token) = setup().await;
    let report = churn(&emu, &c, 4, 6).await;
    let at = report["at"].as_str().unwrap();
    let changed: BTreeSet<String> = report["updated"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["created"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(report["created"].as_array().unwrap().len(), 4);
    let got: BTreeSet<String> = all_ids(
        &c,
        &token,
        format!(
            "{}/v1.0/security/alerts_v2?$filter=lastUpdateDateTime ge {at}&$top=3",
            emu.base_url()
        ),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(got, changed);
    // The new alerts are there for everyone: 124 in all.
    let all = all_ids(&c, &token, format!("{}/v1.0/security/alerts_v2?$top=50", emu.base_url())).await;
    assert_eq!(all.len(), 124);
    // The same seed makes the same changes.
    let (emu2, c2, _) = setup().await;
    let report2 = churn(&emu2, &c2, 4, 6).await;
    assert_eq!(report2["updated"], report["updated"]);
}

#[tokio::test]
async fn a_skip_token_is_a_position_so_items_can_repeat_or_be_missed_under_orderby() {
    let (emu, c, token) = setup().await;
    let base = format!("{}/v1.0/security/alerts_v2", emu.base_url());
    let get = |url: String| {
        let (c, token) = (c.clone(), token.clone());
        async move { c.get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Sorted by lastUpdateDateTime: updating an alert already read moves it to the end, so it is read again.
    let first = get(format!("{base}?$orderby=lastUpdateDateTime asc&$top=20")).await;
    let seen: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let moved = &seen[0];
    let r = c
        .patch(format!("{base}/{moved}"))
        .bearer_auth(&token)
        .json(&json!({"status": "inProgress"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let rest = all_ids(&c, &token, first["@odata.nextLink"].as_str().unwrap().to_string()).await;
    assert!(rest.contains(moved), "an updated alert appears again on a later page");
    // Newest first: updating an alert not read yet moves it before the position already reached: it is missed.
    let all = all_ids(&c, &token, format!("{base}?$orderby=lastUpdateDateTime desc&$top=100")).await;
    let first = get(format!("{base}?$orderby=lastUpdateDateTime desc&$top=20")).await;
    let mut read: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let later = all.last().unwrap().clone();
    c.patch(format!("{base}/{later}"))
        .bearer_auth(&token)
        .json(&json!({"status": "resolved"}))
        .send()
        .await
        .unwrap();
    read.extend(all_ids(&c, &token, first["@odata.nextLink"].as_str().unwrap().to_string()).await);
    assert!(!read.contains(&later), "an alert updated ahead of the reader is missed");
    // In collection order (a cursor), the same update does not move it: every alert once, new ones at the end.
    let first = get(format!("{base}?$top=20")).await;
    let mut ids: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let report = churn(&emu, &c, 2, 10).await;
    ids.extend(all_ids(&c, &token, first["@odata.nextLink"].as_str().unwrap().to_string()).await);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no alert twice");
    assert_eq!(ids.len(), 122);
    assert_eq!(
        ids[120..].to_vec(),
        report["created"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_changed_item_is_never_served_stale() {
    let (emu, c, token) = setup().await;
    let url = format!("{}/v1.0/security/alerts_v2?$top=5", emu.base_url());
    let page = |c: reqwest::Client, token: String, url: String| async move {
        c.get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap()
    };
    // The first read stores each item's bytes; a PATCH and a churn update must both be seen by the next read.
    let before = page(c.clone(), token.clone(), url.clone()).await;
    let first = before["value"][0]["id"].as_str().unwrap().to_string();
    let r = c
        .patch(format!("{}/v1.0/security/alerts_v2/{first}", emu.base_url()))
        .bearer_auth(&token)
        .json(&json!({"assignedTo": "someone.new@contoso-demo.onmicrosoft.com"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let after = page(c.clone(), token.clone(), url.clone()).await;
    assert_eq!(after["value"][0]["assignedTo"], "someone.new@contoso-demo.onmicrosoft.com");
    for _ in 0..20 {
        let report = churn(&emu, &c, 0, 50).await;
        let at = report["at"].as_str().unwrap().to_string();
        let now = page(c.clone(), token.clone(), url.clone()).await;
        let changed: Vec<&Value> = now["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["lastUpdateDateTime"] == at.as_str())
            .collect();
        let ids: BTreeSet<&str> = report["updated"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for a in now["value"].as_array().unwrap() {
            assert_eq!(
                ids.contains(a["id"].as_str().unwrap()),
                a["lastUpdateDateTime"] == at.as_str(),
                "{a}"
            );
        }
        if !changed.is_empty() {
            return;
        }
    }
    panic!("no churn update landed on the first page in 20 rounds of 50");
}

/// The ids a brute-force reading of the dataset gives for a time range (what the index must reproduce).
fn expected(ds: &secgraph_emulator::Dataset, prop: &str, lo: &str, hi: Option<&str>, incidents: bool) -> Vec<String> {
    let items = if incidents { &ds.incidents } else { &ds.alerts_v2 };
    items
        .iter()
        .filter(|a| {
            let t = a[prop].as_str().unwrap();
            t >= lo && hi.is_none_or(|hi| t < hi)
        })
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn time_range_filters_answer_what_a_full_scan_does_before_and_after_changes() {
    let (emu, c, token) = setup().await;
    let base = format!("{}/v1.0/security", emu.base_url());
    let ds = emu.dataset();
    // Bounds taken from the data itself, so ranges cut through the middle of the collections.
    let mut created: Vec<&str> = ds.alerts_v2.iter().map(|a| a["createdDateTime"].as_str().unwrap()).collect();
    created.sort();
    let mut updated: Vec<&str> = ds.alerts_v2.iter().map(|a| a["lastUpdateDateTime"].as_str().unwrap()).collect();
    updated.sort();
    let (c_lo, c_hi) = (created[30].to_string(), created[90].to_string());
    let (u_lo, u_hi) = (updated[20].to_string(), updated[100].to_string());
    drop(ds);

    let check = |filter: String, prop: &'static str, lo: String, hi: Option<String>, coll: &'static str| {
        let (c, token, base) = (c.clone(), token.clone(), base.clone());
        let emu = &emu;
        async move {
            let top = if coll == "incidents" { 7 } else { 9 };
            let url = format!("{base}/{coll}?$top={top}&$filter={}", filter.replace(' ', "%20"));
            let got = all_ids(&c, &token, url).await;
            let want = expected(&emu.dataset(), prop, &lo, hi.as_deref(), coll == "incidents");
            assert!(!want.is_empty(), "{coll} {filter}: the range should hold items");
            assert_eq!(got, want, "{coll} {filter}: collection order, every item once");
        }
    };
    let (c_lo, c_hi, u_lo, u_hi) = (&c_lo, &c_hi, &u_lo, &u_hi);
    // (filter, property, from, before, collection)
    let cases: [(String, &str, &String, Option<&String>, &str); 5] = [
        (
            format!("createdDateTime ge {c_lo} and createdDateTime lt {c_hi}"),
            "createdDateTime",
            c_lo,
            Some(c_hi),
            "alerts_v2",
        ),
        (
            format!("lastUpdateDateTime ge {u_lo} and lastUpdateDateTime lt {u_hi}"),
            "lastUpdateDateTime",
            u_lo,
            Some(u_hi),
            "alerts_v2",
        ),
        (
            format!("{u_hi} gt lastUpdateDateTime and lastUpdateDateTime ge {u_lo}"),
            "lastUpdateDateTime",
            u_lo,
            Some(u_hi),
            "alerts_v2",
        ),
        (
            format!("lastUpdateDateTime ge {u_lo}"),
            "lastUpdateDateTime",
            u_lo,
            None,
            "incidents",
        ),
        (format!("createdDateTime ge {c_lo}"), "createdDateTime", c_lo, None, "incidents"),
    ];
    for round in 0..2 {
        for (filter, prop, lo, hi, coll) in &cases {
            check(filter.clone(), prop, (*lo).clone(), hi.cloned(), coll).await;
        }
        if round == 0 {
            // Changes move alerts (and their incidents) in and out of the ranges; a PATCH does too.
            churn(&emu, &c, 5, 30).await;
            let id = emu.dataset().alerts_v2[3]["id"].as_str().unwrap().to_string();
            let r = c
                .patch(format!("{base}/alerts_v2/{id}"))
                .bearer_auth(&token)
                .json(&json!({"status": "inProgress"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }

    // Sorted by the indexed times, both ways: the same order a sort of the scanned values gives (ties in
    // collection order).
    for desc in [false, true] {
        let dir = if desc { "desc" } else { "asc" };
        let url = format!("{base}/alerts_v2?$top=11&$orderby=lastUpdateDateTime%20{dir}&$filter=lastUpdateDateTime%20ge%20{u_lo}");
        let got = all_ids(&c, &token, url).await;
        let ds = emu.dataset();
        let mut want: Vec<(String, String)> = ds
            .alerts_v2
            .iter()
            .filter(|a| a["lastUpdateDateTime"].as_str().unwrap() >= u_lo.as_str())
            .map(|a| {
                (
                    a["lastUpdateDateTime"].as_str().unwrap().to_string(),
                    a["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        want.sort_by(|a, b| if desc { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
        assert_eq!(got, want.into_iter().map(|(_, id)| id).collect::<Vec<_>>(), "orderby {dir}");
    }
}

/// Advanced hunting sees changes: the tables are rebuilt by the first hunting query after a change.
#[tokio::test]
async fn hunting_tables_follow_the_changes() {
    let (emu, c, token) = setup().await;
    let hunt = |query: String| {
        let (emu, c, token) = (&emu, &c, &token);
        async move {
            let (status, reply) = common::hunt(emu, c, token, json!({ "Query": query })).await;
            assert_eq!(status, 200, "{reply}");
            reply
        }
    };
    let count = |reply: &Value| reply["results"][0]["Count"].as_i64().unwrap_or_else(|| panic!("{reply}"));
    let before = count(&hunt("AlertInfo | count".into()).await);
    assert_eq!(before, 120, "one AlertInfo row per alert");
    let report = churn(&emu, &c, 3, 0).await;
    let created: Vec<String> = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("\"{}\"", v.as_str().unwrap()))
        .collect();
    assert_eq!(count(&hunt("AlertInfo | count".into()).await), before + 3);
    let found = hunt(format!("AlertInfo | where AlertId in ({}) | count", created.join(", "))).await;
    assert_eq!(count(&found), 3, "the new alerts are in AlertInfo");
}
