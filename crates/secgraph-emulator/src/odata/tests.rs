use super::*;
use serde_json::{Value, json};

fn item() -> Value {
    json!({
        "id": "a1",
        "severity": "high",
        "score": 7,
        "ratio": 0.5,
        "active": true,
        "assignedTo": null,
        "title": "Suspicious PowerShell Command",
        "createdDateTime": "2024-05-10T12:00:00.1234567Z",
        "vendorInformation": {"provider": "MDATP", "vendor": "Microsoft"},
        "tags": ["red", "blue"],
        "userStates": [
            {"accountName": "alex", "userPrincipalName": "alex@contoso.com", "logonIp": "10.0.0.1"},
            {"accountName": "o'brien", "userPrincipalName": "ob@contoso.com", "logonIp": "10.0.0.2"}
        ],
        "fileStates": [{"name": "a.exe", "fileHash": {"hashType": "sha256", "hashValue": "abc"}}],
        "empty": []
    })
}

fn eval(f: &str) -> bool {
    let e = parse_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
    matches(&e, &item()).unwrap_or_else(|e| panic!("{f}: {e}"))
}

#[test]
fn comparison_operators() {
    let cases = [
        ("severity eq 'high'", true),
        ("severity eq 'low'", false),
        ("severity ne 'low'", true),
        ("severity ne 'high'", false),
        ("score gt 6", true),
        ("score gt 7", false),
        ("score ge 7", true),
        ("score lt 7", false),
        ("score lt 8", true),
        ("score le 7", true),
        ("score le 6", false),
        ("ratio eq 0.5", true),
        ("ratio lt 1", true),
        ("score eq -7", false),
        ("active eq true", true),
        ("active eq false", false),
        ("assignedTo eq null", true),
        ("assignedTo ne null", false),
        ("missing eq null", true),
        ("severity eq null", false),
        ("severity ne null", true),
        ("assignedTo gt 'a'", false),
        ("title gt 'A'", true),
    ];
    for (f, want) in cases {
        assert_eq!(eval(f), want, "{f}");
    }
}

#[test]
fn datetime_literals_compare_with_string_properties() {
    assert!(eval("createdDateTime ge 2024-05-10T00:00:00Z"));
    assert!(eval("createdDateTime gt 2024-05-10T12:00:00Z"));
    assert!(!eval("createdDateTime gt 2024-05-10T12:00:00.2Z"));
    assert!(eval("createdDateTime lt 2024-05-10T14:00:00+01:00"));
    assert!(!eval("createdDateTime le 2024-05-10T12:00:00+01:00"));
    assert!(eval(
        "createdDateTime ge 2024-05-09T00:00:00Z and createdDateTime le 2024-05-11T00:00:00Z"
    ));
}

#[test]
fn logical_operators_and_precedence() {
    assert!(eval("severity eq 'high' and score eq 7"));
    assert!(!eval("severity eq 'high' and score eq 8"));
    assert!(eval("severity eq 'low' or score eq 7"));
    assert!(!eval("severity eq 'low' or score eq 8"));
    assert!(eval("not severity eq 'low'"));
    assert!(!eval("not (severity eq 'high')"));
    assert!(eval("not(startswith(title, 'Benign'))"));
    // and binds tighter than or
    assert!(eval("severity eq 'low' and score eq 8 or active eq true"));
    assert!(!eval("severity eq 'low' and (score eq 8 or active eq true)"));
    assert!(eval("(((severity eq 'high')))"));
    assert!(eval("severity in ('low', 'high')"));
    assert!(!eval("severity in ('low', 'medium')"));
}

#[test]
fn string_literals_and_escapes() {
    assert!(eval("userStates/any(u: u/accountName eq 'o''brien')"));
    assert!(eval("title eq 'Suspicious PowerShell Command'"));
    assert!(!eval("title eq 'x'') or true or (''x'"));
    assert!(eval("vendorInformation/provider eq 'MDATP'"));
    assert!(eval("fileStates/any(f: f/fileHash/hashValue eq 'abc')"));
}

#[test]
fn string_functions() {
    assert!(eval("tolower(title) eq 'suspicious powershell command'"));
    assert!(eval("toupper(severity) eq 'HIGH'"));
    assert!(eval("startswith(title, 'Suspicious')"));
    assert!(!eval("startswith(title, 'suspicious')"));
    assert!(eval("endswith(title, 'Command')"));
    assert!(eval("contains(title, 'PowerShell')"));
    assert!(eval("contains(tolower(title), 'powershell')"));
    assert!(!eval("contains(title, 'bash')"));
    assert!(!eval("contains(assignedTo, 'x')"));
    assert!(eval("startswith(vendorInformation/vendor, 'Micro')"));
}

#[test]
fn lambdas() {
    assert!(eval("userStates/any(u: u/accountName eq 'alex')"));
    assert!(!eval("userStates/any(u: u/accountName eq 'zed')"));
    assert!(eval("userStates/all(u: endswith(u/userPrincipalName, '@contoso.com'))"));
    assert!(!eval("userStates/all(u: u/accountName eq 'alex')"));
    assert!(eval("tags/any(t: t eq 'blue')"));
    assert!(eval("tags/any()"));
    assert!(!eval("empty/any()"));
    assert!(eval("empty/all(x: x eq 'a')"));
    assert!(!eval("missing/any(x: x eq 'a')"));
    assert!(eval("userStates/any(u: u/logonIp eq '10.0.0.2' and u/accountName eq 'o''brien')"));
    assert!(eval(
        "severity eq 'high' and (userStates/any(a: a/accountName eq 'alex') or fileStates/any(f: f/name eq 'b.exe'))"
    ));
}

#[test]
fn malformed_filters_are_rejected_with_a_position() {
    let bad = [
        ("", "empty"),
        ("severity eq", "end of expression"),
        ("severity eq 'high", "unterminated"),
        ("severity eq \"high\"", "single quotes"),
        ("severity neq 'high'", "'ne'"),
        ("(severity eq 'high'", "expected ')'"),
        ("severity eq 'high')", "unexpected ')'"),
        ("severity eq 'high' and", "end of expression"),
        ("frobnicate(title)", "unknown function"),
        ("startswith(title)", "takes 2 argument"),
        ("userStates/any(u u/accountName eq 'a')", "expected ':'"),
        ("userStates/any(u: accountName eq 'a')", "range variable"),
        ("userStates/all()", "needs a range variable"),
        ("createdDateTime ge 2024-13-45T00:00:00Z", "invalid date-time"),
        ("severity eq 'a' $ 'b'", "unexpected character"),
        ("severity eq eq", "operator"),
    ];
    for (f, want) in bad {
        let e = parse_filter(f).expect_err(f);
        assert!(e.to_string().contains(want), "{f}: {e}");
        assert!(e.position <= f.len(), "{f}: {e}");
    }
    let deep = format!("{}severity eq 'a'{}", "(".repeat(200), ")".repeat(200));
    assert!(parse_filter(&deep).unwrap_err().to_string().contains("too deeply"));
    let deep_not = format!("{}severity eq 'a'", "not ".repeat(500));
    assert!(parse_filter(&deep_not).is_err());
}

#[test]
fn type_errors_are_reported_not_guessed() {
    let e = parse_filter("userStates eq 'a'").unwrap();
    assert!(matches(&e, &item()).is_err());
    let e = parse_filter("severity/any(s: s eq 'a')").unwrap();
    assert!(matches(&e, &item()).is_err());
    let e = parse_filter("severity").unwrap();
    assert!(matches(&e, &item()).is_err());
    let e = parse_filter("score eq 'seven'").unwrap();
    assert!(matches(&e, &item()).is_err());
}

#[test]
fn root_properties_exclude_lambda_variables() {
    let e = parse_filter("severity eq 'a' and userStates/any(u: u/accountName eq 'x' and u/tags/any(t: t eq u/x)) and tags/any()").unwrap();
    let mut seen = Vec::new();
    visit_root_properties(&e, &mut |p| seen.push(p.join("/")));
    assert_eq!(seen, ["severity", "userStates", "tags"]);
}

#[test]
fn never_panics_on_arbitrary_input() {
    let alphabet: Vec<char> = "ab '()/:,eqandornot0123-T:Z.\"any all tolower $".chars().collect();
    let mut seed = 0x5eed_u64;
    for _ in 0..20_000 {
        let mut s = String::new();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let len = (seed >> 58) as usize;
        for _ in 0..len {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            s.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
        }
        if let Ok(e) = parse_filter(&s) {
            let _ = matches(&e, &item());
        }
    }
}
