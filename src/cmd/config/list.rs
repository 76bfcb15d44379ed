//! `elhaz config list`: configs, then the caller's AWS CLI profiles, as a table or JSON.

use super::*;

/// `config list`: configs, then AWS CLI profiles (`source`'s), as a table or JSON.
pub(super) fn list(store: &Store, as_json: bool, source: &SourceContext) -> Result<i32> {
    let (rows, refused) = list_rows(store, source)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return list_result(refused);
    }
    if rows.is_empty() {
        eprintln!(
            "elhaz: no configs in {} and no AWS CLI profiles",
            display_path(store.dir())
        );
        eprintln!("hint: elhaz config add NAME --role-arn ARN");
        return Ok(0);
    }
    print_table(&rows);
    list_result(refused)
}

/// One row per config and per profile, and the refusals among the configs.
fn list_rows(store: &Store, source: &SourceContext) -> Result<(Vec<Value>, Vec<Error>)> {
    let names = store.names()?;
    let profiles = AwsProfiles::load_sync(source)?;
    let mut rows: Vec<Value> = Vec::new();
    // A config refused for what it is (another user's, writable by others, not a
    // regular file) is listed, and makes the listing fail once it is printed.
    let mut refused: Vec<Error> = Vec::new();
    for n in &names {
        if let Some(e) = store.refusal(n) {
            rows.push(json!({ "name": n, "kind": "config", "error": e.message, "refused": true }));
            refused.push(e);
            continue;
        }
        let row = match store.load(n) {
            Ok(c) => json!({
                "name": n,
                "kind": "config",
                "role_arn": c.role_arn(),
                "region": c.region(),
                "description": c.description(),
            }),
            Err(e) => json!({ "name": n, "kind": "config", "error": e.message }),
        };
        rows.push(row);
    }
    for p in profiles.profiles.values() {
        rows.push(json!({
            "name": p.name,
            "kind": "profile",
            "profile_type": p.kind(),
            "role_arn": p.role_arn,
            "region": p.region,
            "shadowed": names.contains(&p.name),
            "source_only": !p.is_name(),
        }));
    }
    Ok((rows, refused))
}

/// The rows as a NAME / KIND / DETAIL table.
fn print_table(rows: &[Value]) {
    let mut table = vec![vec!["NAME".to_string(), "KIND".into(), "DETAIL".into()]];
    for r in rows {
        let name = r["name"].as_str().unwrap_or_default();
        let kind = r["kind"].as_str().unwrap_or_default();
        table.push(vec![
            name.into(),
            kind.into(),
            detail(r, kind).trim().to_string(),
        ]);
    }
    for line in crate::cmd::table::columns_at_least(&table, &[0, 8]) {
        println!("{line}");
    }
}

/// A row's DETAIL: the refusal, the profile's type and role, or the config's
/// description.
fn detail(r: &Value, kind: &str) -> String {
    if let Some(e) = r["error"].as_str() {
        let what = if r["refused"] == json!(true) {
            "refused"
        } else {
            "invalid"
        };
        format!("{what}: {e}")
    } else if kind == "profile" {
        let mut d = r["profile_type"].as_str().unwrap_or_default().to_string();
        if let Some(arn) = r["role_arn"].as_str() {
            d = format!("{d} {arn}");
        }
        if r["shadowed"] == json!(true) {
            d.push_str(" (hidden by the config of the same name)");
        }
        if r["source_only"] == json!(true) {
            d.push_str(" (source only, not a NAME)");
        }
        d
    } else {
        r["description"]
            .as_str()
            .or(r["role_arn"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// Exit 3 with the first refusal (and how many there were), or 0.
fn list_result(mut refused: Vec<Error>) -> Result<i32> {
    if refused.is_empty() {
        return Ok(0);
    }
    let more = refused.len() - 1;
    let mut first = refused.swap_remove(0);
    if more > 0 {
        first
            .message
            .push_str(&format!(" (and {more} more refused)"));
    }
    Err(first)
}
