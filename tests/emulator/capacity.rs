//! Regional capacity: `locations/{location}/vmSizes`, `usages` and `quotas` in the
//! OpenAPI's shapes (every answer goes through the contract check), usage that follows
//! the clusters' current nodes, and the admin controls (Rust handle and HTTP).

use amlspec::emulator::{ADMIN_KEY_HEADER, EmulatorConfig};
use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Env, explicit, start};

fn loc_path(env: &Env, location: &str, what: &str) -> String {
    format!(
        "{}/providers/Microsoft.MachineLearningServices/locations/{location}/{what}",
        env.sub()
    )
}

/// Every page of a usages or quotas list, following `nextLink`.
async fn all_pages(env: &Env, first: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_string());
    while let Some(url) = next {
        let r = env.get(&url).await;
        r.expect(200);
        pages += 1;
        items.extend(r.body["value"].as_array().cloned().unwrap_or_default());
        next = r.body["nextLink"].as_str().map(str::to_string);
        assert!(pages < 50, "paging does not end");
    }
    (items, pages)
}

fn family<'a>(usages: &'a [Value], family: &str) -> &'a Value {
    usages
        .iter()
        .find(|u| u["name"]["value"] == family)
        .unwrap_or_else(|| panic!("no usage for {family}: {usages:?}"))
}

fn total(usages: &[Value]) -> &Value {
    usages
        .iter()
        .find(|u| u["type"] == "Microsoft.MachineLearningServices/totalCount")
        .expect("total usage")
}

async fn cluster(env: &Env, ws: &str, name: &str, size: &str, location: &str) -> String {
    let id = format!("{ws}/computes/{name}");
    let r = env
        .put(
            &id,
            json!({ "location": location, "properties": { "computeType": "AmlCompute", "properties": {
                "vmSize": size, "scaleSettings": { "minNodeCount": 0, "maxNodeCount": 4 } } } }),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    env.emu.admin().complete(&id).unwrap();
    id
}

#[tokio::test]
async fn vm_sizes_list_the_catalogue_of_the_region() {
    let env = start(explicit()).await;
    let r = env.get(&loc_path(&env, "westeurope", "vmSizes")).await;
    r.expect(200);
    let sizes = r.body["value"].as_array().unwrap();
    let t4 = sizes
        .iter()
        .find(|s| s["name"] == "Standard_NC4as_T4_v3")
        .expect("T4 offered");
    assert_eq!(t4["family"], "standardNCASv3_T4Family");
    assert_eq!(
        (t4["vCPUs"].as_u64(), t4["gpus"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(t4["memoryGB"], 28.0);
    assert_eq!(t4["estimatedVMPrices"]["billingCurrency"], "USD");
    for name in ["Standard_NC24ads_A100_v4", "Standard_NC6s_v3"] {
        assert!(sizes.iter().any(|s| s["name"] == name), "{name}");
    }
    assert!(
        !sizes.iter().any(|s| s["name"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("standard_nc6")),
        "the retired NC6 is not offered"
    );
    assert!(r.body.get("nextLink").is_none());
}

#[tokio::test]
async fn locations_match_without_case_or_spaces_and_unknown_ones_are_refused() {
    let env = start(explicit()).await;
    let names = |r: &super::support::Resp| -> Vec<String> {
        r.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let a = env.get(&loc_path(&env, "westeurope", "vmSizes")).await;
    let b = env.get(&loc_path(&env, "West%20Europe", "vmSizes")).await;
    let c = env.get(&loc_path(&env, "WESTEUROPE", "vmSizes")).await;
    assert_eq!(names(&a), names(&b));
    assert_eq!(names(&a), names(&c));
    // A100 sizes are offered in a subset of regions.
    let north = env.get(&loc_path(&env, "northeurope", "vmSizes")).await;
    assert!(!names(&north).contains(&"Standard_NC24ads_A100_v4".to_string()));

    for what in ["vmSizes", "usages", "quotas"] {
        let r = env.get(&loc_path(&env, "atlantis", what)).await;
        r.expect(400);
        assert_eq!(r.error_code(), "NoRegisteredProviderFound", "{}", r.text);
        assert!(
            r.text.contains("westeurope"),
            "names the supported locations"
        );
    }
}

#[tokio::test]
async fn wrong_api_version_and_missing_auth_are_refused_as_arm_does() {
    let env = start(explicit()).await;
    for what in ["vmSizes", "usages", "quotas"] {
        let path = loc_path(&env, "westeurope", what);
        let r = env.get(&format!("{path}?api-version=2019-01-01")).await;
        r.expect(400);
        assert_eq!(r.error_code(), "NoRegisteredProviderFound");
        assert!(r.text.contains("2026-07-01"), "{}", r.text);
        assert!(r.text.contains("location 'westeurope'"), "{}", r.text);

        let r = env.get(&format!("{path}?x=1&api-version=")).await;
        assert_eq!(r.status, 400, "{}", r.text);

        let r = env.call_with(Method::GET, &path, None, None).await;
        r.expect(401);
        assert_eq!(r.error_code(), "AuthenticationFailed", "{}", r.text);

        let r = env
            .call_with(Method::GET, &path, None, Some("not-a-token"))
            .await;
        r.expect(401);

        let other = path.replace(
            env.emu.subscription_id(),
            "99999999-9999-9999-9999-999999999999",
        );
        let r = env.get(&other).await;
        r.expect(404);
        assert_eq!(r.error_code(), "SubscriptionNotFound");

        let r = env.call(Method::PUT, &path, Some(json!({}))).await;
        r.expect(405);
    }
}

#[tokio::test]
async fn usage_counts_current_nodes_times_cores_per_family() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let t4 = cluster(&env, &ws, "gpu-t4", "standard_nc4as_t4_v3", "westeurope").await;
    let v100 = cluster(&env, &ws, "gpu-v100", "Standard_NC6s_v3", "West Europe").await;
    let elsewhere = cluster(&env, &ws, "gpu-east", "Standard_NC6s_v3", "eastus").await;
    let usages = || async {
        all_pages(&env, &loc_path(&env, "westeurope", "usages"))
            .await
            .0
    };

    let u = usages().await;
    assert_eq!(family(&u, "standardNCASv3_T4Family")["currentValue"], 0);
    assert_eq!(family(&u, "standardNCASv3_T4Family")["limit"], 48);
    assert_eq!(total(&u)["currentValue"], 0);
    assert_eq!(total(&u)["limit"], 100);
    assert_eq!(
        family(&u, "standardNCASv3_T4Family")["name"]["localizedValue"],
        "Standard NCASv3_T4 Family Cluster Dedicated vCPUs"
    );
    assert_eq!(family(&u, "standardNCASv3_T4Family")["unit"], "Count");

    let admin = env.emu.admin();
    admin.set_current_nodes(&t4, 3).unwrap();
    admin.set_current_nodes(&v100, 2).unwrap();
    admin.set_current_nodes(&elsewhere, 4).unwrap();
    let u = usages().await;
    assert_eq!(family(&u, "standardNCASv3_T4Family")["currentValue"], 12);
    assert_eq!(family(&u, "standardNCSv3Family")["currentValue"], 12);
    assert_eq!(total(&u)["currentValue"], 24);
    let got = env.get(&t4).await;
    assert_eq!(got.body["properties"]["properties"]["currentNodeCount"], 3);

    let east = all_pages(&env, &loc_path(&env, "eastus", "usages")).await.0;
    assert_eq!(family(&east, "standardNCSv3Family")["currentValue"], 24);

    // Deleting a cluster gives its cores back.
    let r = env
        .delete(&format!("{v100}?underlyingResourceAction=Delete"))
        .await;
    assert!(r.status < 300, "{}", r.text);
    let _ = admin.complete(&v100);
    let u = usages().await;
    assert_eq!(family(&u, "standardNCSv3Family")["currentValue"], 0);
    assert_eq!(total(&u)["currentValue"], 12);

    assert!(
        admin
            .set_current_nodes(&format!("{ws}/computes/none"), 1)
            .is_err()
    );
}

#[tokio::test]
async fn a_quota_exactly_used_up_shows_usage_equal_to_limit() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let c = cluster(&env, &ws, "gpu", "Standard_NC6s_v3", "westeurope").await;
    let admin = env.emu.admin();
    admin.set_family_quota("West Europe", "standardncsv3family", 24);
    admin.set_total_cores_quota("westeurope", 24);
    admin.set_current_nodes(&c, 4).unwrap();
    let (u, _) = all_pages(&env, &loc_path(&env, "westeurope", "usages")).await;
    let f = family(&u, "standardNCSv3Family");
    assert_eq!(
        (f["currentValue"].as_u64(), f["limit"].as_u64()),
        (Some(24), Some(24))
    );
    let t = total(&u);
    assert_eq!(
        (t["currentValue"].as_u64(), t["limit"].as_u64()),
        (Some(24), Some(24))
    );
    // Other regions keep the defaults.
    let (east, _) = all_pages(&env, &loc_path(&env, "eastus", "usages")).await;
    assert_eq!(family(&east, "standardNCSv3Family")["limit"], 48);
}

#[tokio::test]
async fn usages_and_quotas_page_with_next_link() {
    let env = start(EmulatorConfig {
        page_size: 2,
        ..explicit()
    })
    .await;
    env.workspace("rg", "ws1").await;
    let (u, pages) = all_pages(&env, &loc_path(&env, "westeurope", "usages")).await;
    let families = env.emu.admin().capacity().offered("westeurope").len();
    assert!(pages > 2, "{pages} pages");
    // The total, then one per family of the offered sizes, each once.
    let mut names: Vec<&str> = u
        .iter()
        .map(|x| x["name"]["value"].as_str().unwrap())
        .collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "no item twice across pages");
    assert!(n > 2 && n <= families + 1);

    let first = env.get(&loc_path(&env, "westeurope", "quotas")).await;
    let next = first.body["nextLink"].as_str().expect("nextLink");
    assert!(next.contains("api-version=2026-07-01"), "{next}");
    let (q, _) = all_pages(&env, &loc_path(&env, "westeurope", "quotas")).await;
    assert_eq!(q.len(), n - 1, "one quota per family for the one workspace");
    let ws = env.ws("rg", "ws1");
    assert!(q.iter().all(|x| {
        x["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{ws}/quotas/"))
            && x["type"] == "Microsoft.MachineLearningServices/workspaces/quotas"
            && x["limit"] == 48
            && x["amlWorkspaceLocation"] == "westeurope"
    }));
    // No workspace in the region: no workspace quotas.
    let (east, _) = all_pages(&env, &loc_path(&env, "eastus", "quotas")).await;
    assert!(east.is_empty());
}

#[tokio::test]
async fn sizes_are_withdrawn_and_offered_by_region_in_any_case() {
    let env = start(explicit()).await;
    let admin = env.emu.admin();
    let offered = |loc: &'static str| {
        let env = &env;
        async move {
            env.get(&loc_path(env, loc, "vmSizes")).await.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    admin
        .set_vm_size_available("West Europe", "standard_nc6s_v3", false)
        .unwrap();
    assert!(
        !offered("westeurope")
            .await
            .contains(&"Standard_NC6s_v3".into())
    );
    assert!(
        offered("northeurope")
            .await
            .contains(&"Standard_NC6s_v3".into())
    );
    admin
        .set_vm_size_available("westeurope", "STANDARD_NC6S_V3", true)
        .unwrap();
    assert!(
        offered("westeurope")
            .await
            .contains(&"Standard_NC6s_v3".into())
    );
    assert!(
        admin
            .set_vm_size_available("westeurope", "Standard_NC6", true)
            .is_err(),
        "a size the catalogue lacks cannot be offered"
    );
}

#[tokio::test]
async fn admin_http_changes_capacity_with_the_admin_key_only() {
    let env = start(explicit()).await;
    let base = env.emu.endpoint();
    let key = env.emu.admin_key().to_string();
    let send = |method: Method, path: &str, body: Value, key: Option<&str>| {
        let mut req = env
            .http
            .request(method, format!("{base}{path}"))
            .json(&body);
        if let Some(k) = key {
            req = req.header(ADMIN_KEY_HEADER, k);
        }
        req.send()
    };
    let r = send(
        Method::PUT,
        "/admin/capacity/locations/westeurope/quotas/standardNCASv3_T4Family",
        json!({ "limit": 8 }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    for (path, body) in [
        (
            "/admin/capacity/locations/westeurope/quotas/standardNCASv3_T4Family",
            json!({ "limit": 8 }),
        ),
        (
            "/admin/capacity/locations/West%20Europe/total-cores",
            json!({ "limit": 10 }),
        ),
        (
            "/admin/capacity/locations/westeurope/vm-sizes/Standard_NC4as_T4_v3",
            json!({ "available": false }),
        ),
    ] {
        let r = send(Method::PUT, path, body, Some(&key)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
    }
    let r = send(
        Method::PUT,
        "/admin/capacity/locations/westeurope/quotas/x",
        json!({ "limit": -1 }),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    let sizes = env.get(&loc_path(&env, "westeurope", "vmSizes")).await;
    assert!(
        !sizes.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "Standard_NC4as_T4_v3")
    );
    let (u, _) = all_pages(&env, &loc_path(&env, "westeurope", "usages")).await;
    assert_eq!(total(&u)["limit"], 10);
    // A family still counts (and shows its limit) once its sizes are withdrawn only if
    // something uses it; the T4 family has no other sizes offered, so check through GET.
    let r = send(Method::GET, "/admin/capacity", Value::Null, Some(&key))
        .await
        .unwrap();
    let capacity: Value = r.json().await.unwrap();
    assert_eq!(
        capacity["overrides"]["westeurope"]["familyLimits"]["standardNCASv3_T4Family"],
        8
    );

    // A new size, then a cluster's nodes, over HTTP.
    let r = send(
        Method::POST,
        "/admin/capacity/vm-sizes",
        json!({ "name": "Standard_NC6", "family": "standardNCFamily", "vCPUs": 6, "gpus": 1,
                "memoryGB": 56.0, "osVhdSizeMB": 1047552, "maxResourceVolumeMB": 389120,
                "lowPriorityCapable": true, "premiumIO": false, "regions": ["southcentralus"] }),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let south = env.get(&loc_path(&env, "southcentralus", "vmSizes")).await;
    let nc6 = south.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Standard_NC6")
        .expect("added size")
        .clone();
    assert!(nc6.get("estimatedVMPrices").is_none(), "no price given");

    let ws = env.workspace("rg", "ws1").await;
    let c = cluster(&env, &ws, "cpu", "Standard_D4s_v3", "westeurope").await;
    let r = send(
        Method::PUT,
        "/admin/computes/nodes",
        json!({ "id": c, "nodes": 2 }),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let (u, _) = all_pages(&env, &loc_path(&env, "westeurope", "usages")).await;
    assert_eq!(family(&u, "standardDSv3Family")["currentValue"], 8);
    let r = send(
        Method::PUT,
        "/admin/computes/nodes",
        json!({ "id": format!("{ws}/computes/nope"), "nodes": 2 }),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn cli_flags_shape_the_capacity() {
    use amlspec::emulator::cli::EmulatorArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }
    let cli = Cli::try_parse_from([
        "emulator",
        "--vm-size-unavailable",
        "West Europe:standard_nc6s_v3",
        "--family-quota",
        "westeurope:standardNCSv3Family=6",
        "--total-cores-quota",
        "westeurope=12",
    ])
    .unwrap();
    let config = cli.args.config(std::path::Path::new("/nonexistent"));
    let c = &config.capacity;
    assert!(
        !c.offered("westeurope")
            .iter()
            .any(|s| s.name == "Standard_NC6s_v3")
    );
    assert_eq!(c.family_limit("westeurope", "standardNCSv3Family"), 6);
    assert_eq!(c.total_cores_limit("westeurope"), 12);
    for bad in [
        ["--family-quota", "westeurope:x"],
        ["--total-cores-quota", "westeurope"],
        ["--vm-size-unavailable", "westeurope"],
    ] {
        assert!(
            Cli::try_parse_from(["emulator", bad[0], bad[1]]).is_err(),
            "{bad:?}"
        );
    }
}
