//! Tenants and their keys, end to end: the admin API, isolation between
//! tenants, scopes, rotation and revocation, rate limits, persistence.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{event, items, Reply, TestServer};

/// The operator's key in these tests.
const ADMIN: &str = "admin-key-0123456789";

/// Requests with one key (and optionally the tenant header).
struct As<'a> {
    s: &'a TestServer,
    key: String,
    tenant: Option<&'a str>,
}

impl<'a> As<'a> {
    fn new(s: &'a TestServer, key: &str) -> Self {
        Self {
            s,
            key: key.to_owned(),
            tenant: None,
        }
    }

    fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let b = reqwest::Client::new()
            .request(method, format!("{}{path}", self.s.base))
            .bearer_auth(&self.key);
        match self.tenant {
            Some(t) => b.header("x-tephra-tenant", t),
            None => b,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut b = self.builder(method, path);
        if let Some(body) = body {
            b = b.json(body);
        }
        self.s.send(b).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }
}

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.server.admin_key = Some(ADMIN.to_owned());
        c.training.enabled = false;
    })
    .await
}

/// Creates tenant `name` and a key with `scopes`; returns the key.
async fn tenant_with_key(s: &TestServer, name: &str, scopes: &[&str]) -> String {
    let admin = As::new(s, ADMIN);
    admin
        .post("/admin/tenants", &json!({"name": name}))
        .await
        .ok();
    key_for(s, name, scopes).await
}

async fn key_for(s: &TestServer, tenant: &str, scopes: &[&str]) -> String {
    let reply = As::new(s, ADMIN)
        .post(
            &format!("/admin/tenants/{tenant}/keys"),
            &json!({"label": "test", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["key"].as_str().expect("key").to_owned()
}

/// Gives a tenant a small world: items `{p}000..`, users `{p}u0..` who
/// clicked some of them, then trains its model.
async fn populate(client: &As<'_>, p: &str) {
    client.post("/v1/items", &items(p, 12)).await.ok();
    let mut events = Vec::new();
    for u in 0..8 {
        for i in 0..4 {
            events.push(event(
                &format!("{p}u{u}"),
                &format!("{p}{:03}", (u + i) % 12),
                "click",
            ));
        }
    }
    client.post("/v1/events", &Value::Array(events)).await.ok();
    let trained = client.post("/v1/admin/train", &json!({})).await;
    assert_ne!(trained.status, 403, "{}", trained.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_one_tenant_never_reaches_another() {
    let s = server().await;
    let key_a = tenant_with_key(&s, "shop-a", &["read", "write", "admin"]).await;
    let key_b = tenant_with_key(&s, "shop-b", &["read", "write", "admin"]).await;
    let a = As::new(&s, &key_a);
    let b = As::new(&s, &key_b);
    populate(&a, "a").await;
    populate(&b, "b").await;
    b.post(
        "/v1/experiments",
        &json!({"name": "b-test", "scene": "home",
                "variants": [{"name": "control"}, {"name": "more", "overrides": {}}]}),
    )
    .await
    .ok();
    b.post("/v1/users", &json!({"id": "b-only-user"}))
        .await
        .ok();

    // Every route naming one of B's ids answers 404 with A's key, and
    // changes nothing.
    let not_found: [(Method, &str, Option<Value>); 12] = [
        (Method::GET, "/v1/items/b000", None),
        (Method::PATCH, "/v1/items/b000", Some(json!({"title": "x"}))),
        (Method::DELETE, "/v1/items/b000", None),
        (Method::GET, "/v1/items/b000/similar", None),
        (Method::GET, "/v1/users/b-only-user", None),
        (
            Method::PATCH,
            "/v1/users/b-only-user",
            Some(json!({"attributes": {"x": 1}})),
        ),
        (Method::DELETE, "/v1/users/b-only-user", None),
        (Method::GET, "/v1/users/bu1/events", None),
        (Method::GET, "/v1/experiments/b-test", None),
        (Method::GET, "/v1/experiments/b-test/results", None),
        (Method::POST, "/v1/experiments/b-test/stop", None),
        (Method::DELETE, "/v1/experiments/b-test", None),
    ];
    for (method, path, body) in not_found {
        let reply = a.call(method.clone(), path, body.as_ref()).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
    }
    // Naming the other tenant explicitly is refused.
    let mut naming_b = As::new(&s, &key_a);
    naming_b.tenant = Some("shop-b");
    naming_b
        .get("/v1/items/b000")
        .await
        .assert_error(403, "forbidden");
    // The admin API is not for tenant keys.
    for path in [
        "/admin/tenants",
        "/admin/tenants/shop-b",
        "/admin/tenants/shop-b/keys",
    ] {
        a.get(path).await.assert_error(403, "forbidden");
    }
    a.delete("/admin/tenants/shop-b")
        .await
        .assert_error(403, "forbidden");

    // B's data is intact.
    assert_eq!(b.get("/v1/items/b000").await.ok()["id"], "b000");
    assert_eq!(
        b.get("/v1/users/b-only-user").await.ok()["id"],
        "b-only-user"
    );
    assert_eq!(b.get("/v1/experiments/b-test").await.ok()["name"], "b-test");

    // Lists, recommendations and analytics of each tenant hold only its own.
    for (client, own, other) in [(&a, "a", "b"), (&b, "b", "a")] {
        let mut seen = Vec::new();
        for path in [
            "/v1/popular",
            "/v1/trending",
            "/v1/latest",
            "/v1/items?limit=100",
        ] {
            seen.extend(client.get(path).await.ids());
        }
        for u in 0..8 {
            for user in [format!("{own}u{u}"), format!("{other}u{u}")] {
                seen.extend(
                    client
                        .get(&format!("/v1/recommend/{user}?n=20"))
                        .await
                        .ids(),
                );
            }
        }
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(|id| id.starts_with(own)),
            "tenant {own} answered another tenant's items: {seen:?}"
        );
        let top = client.get("/v1/analytics/top-items").await;
        let top = top.ok()["items"].as_array().expect("top items").clone();
        assert!(top
            .iter()
            .all(|i| i["id"].as_str().unwrap_or("").starts_with(own)));
        let events = client.get(&format!("/v1/users/{other}u1/events")).await;
        assert_eq!(events.status, 404, "{}", events.text);
    }
    // The admin sees both, each with its own sizes.
    let list = As::new(&s, ADMIN).get("/admin/tenants").await;
    let tenants = list.ok()["tenants"].as_array().expect("tenants").clone();
    let names: Vec<&str> = tenants
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "shop-a", "shop-b"]);
    assert_eq!(tenants[1]["items"], 12);
    assert_eq!(tenants[1]["events"], 32);
    assert_eq!(tenants[0]["items"], 0, "the default tenant got nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_limit_what_a_key_does() {
    let s = server().await;
    let writer = tenant_with_key(&s, "t", &["write"]).await;
    let reader = key_for(&s, "t", &["read"]).await;
    let operator = key_for(&s, "t", &["admin"]).await;
    let (w, r, o) = (
        As::new(&s, &writer),
        As::new(&s, &reader),
        As::new(&s, &operator),
    );

    w.post("/v1/items", &items("i", 3)).await.ok();
    w.post("/v1/events", &json!([event("u", "i000", "click")]))
        .await
        .ok();
    for path in [
        "/v1/items/i000",
        "/v1/popular",
        "/v1/recommend/u",
        "/v1/analytics/ctr",
    ] {
        w.get(path).await.assert_error(403, "forbidden");
        r.get(path).await.ok();
    }
    let refused = r
        .post("/v1/events", &json!([event("u", "i001", "click")]))
        .await;
    refused.assert_error(403, "forbidden");
    assert!(refused.text.contains("`write`"), "{}", refused.text);
    r.call(Method::DELETE, "/v1/items/i000", None)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        r.get("/v1/users/u/events").await.ok()["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    r.post("/v1/recommend", &json!({"user_id": "u"})).await.ok();
    r.post("/v1/admin/train", &json!({}))
        .await
        .assert_error(403, "forbidden");
    w.post("/v1/admin/train", &json!({}))
        .await
        .assert_error(403, "forbidden");
    let trained = o.post("/v1/admin/train", &json!({})).await;
    assert!(![401, 403].contains(&trained.status), "{}", trained.text);
    o.get("/v1/model").await.assert_error(403, "forbidden");

    // A key without any scope cannot be issued; an unknown scope is refused.
    let admin = As::new(&s, ADMIN);
    admin
        .post("/admin/tenants/t/keys", &json!({"scopes": []}))
        .await
        .assert_error(422, "invalid_value")
        .assert_field("scopes");
    admin
        .post("/admin/tenants/t/keys", &json!({"scopes": ["everything"]}))
        .await
        .assert_error(422, "invalid_field");
    // Without a body a key reads only.
    let default_key = admin.post("/admin/tenants/t/keys", &Value::Null).await;
    assert_eq!(
        default_key.status, 422,
        "null is not a key spec: {}",
        default_key.text
    );
    let bare = s
        .send(
            reqwest::Client::new()
                .post(format!("{}/admin/tenants/t/keys", s.base))
                .bearer_auth(ADMIN),
        )
        .await;
    assert_eq!(bare.status, 201, "{}", bare.text);
    assert_eq!(bare.body["scopes"], json!(["read"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_without_secrets_rotated_and_revoked() {
    let s = server().await;
    let first = tenant_with_key(&s, "t", &["read"]).await;
    let admin = As::new(&s, ADMIN);
    let listed = admin.get("/admin/tenants/t/keys").await;
    let keys = listed.ok()["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 1);
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    assert!(first.starts_with(&format!("tph_{id}_")), "{first}");
    assert!(
        !listed.text.contains(&first[first.len() - 20..]),
        "no secret in lists"
    );
    assert!(keys[0].get("key").is_none() && keys[0].get("secret_hash").is_none());
    As::new(&s, &first).get("/v1/popular").await.ok();

    // Rotation: a new secret under the same id; the old one stops at once.
    let rotated = admin
        .post(&format!("/admin/tenants/t/keys/{id}/rotate"), &json!({}))
        .await;
    let second = rotated.ok()["key"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rotated.body["id"], id.as_str());
    assert!(rotated.body["rotated_at"].is_string());
    As::new(&s, &first)
        .get("/v1/popular")
        .await
        .assert_error(401, "unauthorized");
    As::new(&s, &second).get("/v1/popular").await.ok();

    // Revocation: refused from then on, with a message that says so.
    let revoked = admin.delete(&format!("/admin/tenants/t/keys/{id}")).await;
    assert!(revoked.ok()["revoked_at"].is_string());
    let refused = As::new(&s, &second).get("/v1/popular").await;
    refused.assert_error(401, "unauthorized");
    assert!(refused.text.contains("revoked"), "{}", refused.text);
    admin
        .post(&format!("/admin/tenants/t/keys/{id}/rotate"), &json!({}))
        .await
        .assert_error(409, "conflict");
    let listed = admin.get("/admin/tenants/t/keys").await;
    assert!(
        listed.ok()["keys"][0]["revoked_at"].is_string(),
        "revoked keys stay listed"
    );
    admin
        .delete("/admin/tenants/t/keys/000000000000")
        .await
        .assert_error(404, "not_found");
    admin
        .delete(&format!("/admin/tenants/nobody/keys/{id}"))
        .await
        .assert_error(404, "not_found");

    // Keys and tenants survive a restart; revocation too.
    let third = key_for(&s, "t", &["read"]).await;
    let s = s.restart().await;
    As::new(&s, &third).get("/v1/popular").await.ok();
    As::new(&s, &second)
        .get("/v1/popular")
        .await
        .assert_error(401, "unauthorized");
    As::new(&s, &first)
        .get("/v1/popular")
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_then_recover() {
    let s = server().await;
    As::new(&s, ADMIN)
        .post("/admin/tenants", &json!({"name": "t"}))
        .await
        .ok();
    let limited = As::new(&s, ADMIN)
        .post(
            "/admin/tenants/t/keys",
            &json!({"scopes": ["read"], "rate_limit": {"per_second": 2.0, "burst": 3}}),
        )
        .await;
    assert_eq!(limited.body["rate_limit"]["burst"], 3, "{}", limited.text);
    let key = As::new(&s, limited.body["key"].as_str().unwrap());
    let other = As::new(&s, &key_for(&s, "t", &["read"]).await);

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let reply = key.get("/v1/popular").await;
        if reply.status == 429 {
            reply.assert_error(429, "rate_limited");
            retry_after = reply.headers.get("retry-after").cloned();
        }
        statuses.push(reply.status);
    }
    assert_eq!(&statuses[..3], [200, 200, 200], "the burst passes");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let retry_after: u64 = retry_after
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    // Other keys have their own buckets.
    other.get("/v1/popular").await.ok();
    // After the advertised wait, the key is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    key.get("/v1/popular").await.ok();

    // Bad limits are refused with the field to fix.
    As::new(&s, ADMIN)
        .post(
            "/admin/tenants/t/keys",
            &json!({"rate_limit": {"per_second": -1.0, "burst": 3}}),
        )
        .await
        .assert_error(422, "invalid_value")
        .assert_field("rate_limit.per_second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_their_own_settings_and_can_be_deleted() {
    let s = server().await;
    let admin = As::new(&s, ADMIN);
    let created = admin
        .post(
            "/admin/tenants",
            &json!({"name": "small", "settings": {"recommend": {"default_n": 2}}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["settings"]["recommend"]["default_n"], 2);
    let key = key_for(&s, "small", &["read", "write"]).await;
    let small = As::new(&s, &key);
    let clicks = |p: &str| {
        Value::Array(
            (0..5)
                .map(|i| event("u", &format!("{p}{i:03}"), "click"))
                .collect(),
        )
    };
    small.post("/v1/events", &clicks("s")).await.ok();
    assert_eq!(small.get("/v1/popular").await.ids().len(), 2);
    let mut default = As::new(&s, ADMIN);
    default.tenant = Some("default");
    default.post("/v1/events", &clicks("d")).await.ok();
    assert_eq!(default.get("/v1/popular").await.ids().len(), 5);

    // Refusals name what to fix.
    admin
        .post("/admin/tenants", &json!({"name": "small"}))
        .await
        .assert_error(409, "conflict")
        .assert_field("name");
    admin
        .post("/admin/tenants", &json!({"name": "a/b"}))
        .await
        .assert_error(422, "invalid_tenant")
        .assert_field("name");
    admin
        .post(
            "/admin/tenants",
            &json!({"name": "x", "settings": {"recommend": {"default_n": "many"}}}),
        )
        .await
        .assert_error(422, "invalid_settings")
        .assert_field("settings.recommend.default_n");
    admin
        .post(
            "/admin/tenants",
            &json!({"name": "x", "settings": {"server": {"api_key": "0123456789abcdefgh"}}}),
        )
        .await
        .assert_error(422, "invalid_settings")
        .assert_field("settings.server");
    admin
        .post("/admin/tenants", &json!({"name": "x", "extra": 1}))
        .await
        .assert_error(422, "invalid_field");
    admin
        .get("/admin/tenants/x")
        .await
        .assert_error(404, "not_found");
    admin
        .delete("/admin/tenants/default")
        .await
        .assert_error(409, "conflict");
    As::new(&s, "admin-key-0123456780")
        .get("/admin/tenants")
        .await
        .assert_error(401, "unauthorized");

    // Deleting removes the data, the directory and the keys; the name can be
    // used again for a fresh tenant.
    let dir = s.config().data_dir.join("tenants").join("small");
    assert!(dir.is_dir());
    let deleted = admin.delete("/admin/tenants/small").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(!dir.exists(), "the tenant's directory is gone");
    small
        .get("/v1/popular")
        .await
        .assert_error(401, "unauthorized");
    admin
        .delete("/admin/tenants/small")
        .await
        .assert_error(404, "not_found");
    admin
        .post("/admin/tenants", &json!({"name": "small"}))
        .await
        .ok();
    let fresh = As::new(&s, &key_for(&s, "small", &["read"]).await);
    assert!(
        fresh.get("/v1/items").await.ids().is_empty(),
        "nothing came back"
    );
    assert_eq!(
        default.get("/v1/popular").await.ids().len(),
        5,
        "others untouched"
    );

    // Tenants and their data survive a restart.
    let s = s.restart().await;
    let listed = As::new(&s, ADMIN).get("/admin/tenants").await;
    let names: Vec<String> = listed.ok()["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["default", "small"]);
    let mut default = As::new(&s, ADMIN);
    default.tenant = Some("default");
    assert_eq!(default.get("/v1/popular").await.ids().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_key_the_admin_api_is_disabled() {
    let s = TestServer::start().await;
    let reply = s.get("/admin/tenants").await;
    reply.assert_error(403, "forbidden");
    assert!(reply.text.contains("server.admin_key"), "{}", reply.text);
    // The open, one-tenant setup keeps working without any key.
    s.get("/v1/popular").await.ok();
}
