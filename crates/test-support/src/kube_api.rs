//! An in-process Kubernetes API server: namespaced collections under `/api/v1/...` and
//! `/apis/<group>/<version>/...`, each listable and watchable, with `metadata.name` field
//! selectors. Objects are stored as given, stamped with a resource version.
//!
//! Tests change objects with [`KubeApi::apply`] and [`KubeApi::delete`], and take the server
//! down and up with [`KubeApi::set_failing`] to exercise a watcher's retries.
//!
//! It also answers TokenReview and SubjectAccessReview creations: [`KubeApi::add_token`] makes
//! a token authenticate as a user, [`KubeApi::allow_metrics`] lets a user `get /metrics`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Value, json};

/// A collection: the path below the API root, such as `api/v1/namespaces/ns/pods` or
/// `apis/inference.networking.k8s.io/v1/namespaces/ns/inferencepools`.
pub fn pods(namespace: &str) -> String {
    format!("api/v1/namespaces/{namespace}/pods")
}

/// The collection of `InferencePool`s of `group`/`version` in `namespace`.
pub fn inference_pools(namespace: &str, group: &str, version: &str) -> String {
    format!("apis/{group}/{version}/namespaces/{namespace}/inferencepools")
}

#[derive(Clone)]
struct Event {
    resource_version: u64,
    collection: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Store {
    resource_version: u64,
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    history: Vec<Event>,
}

struct Inner {
    store: Mutex<Store>,
    /// Token → username, for TokenReview.
    tokens: Mutex<HashMap<String, String>>,
    /// Users allowed `get` on the non-resource URL `/metrics`.
    metrics_readers: Mutex<HashSet<String>>,
    events: tokio::sync::broadcast::Sender<Event>,
    failing: tokio::sync::watch::Sender<bool>,
    requests: std::sync::atomic::AtomicU64,
}

/// The running server; dropping it stops serving.
pub struct KubeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    /// Serves on an ephemeral loopback port.
    pub async fn start() -> KubeApi {
        let (events, _) = tokio::sync::broadcast::channel(4096);
        let inner = Arc::new(Inner {
            store: Mutex::new(Store::default()),
            tokens: Mutex::new(HashMap::new()),
            metrics_readers: Mutex::new(HashSet::new()),
            events,
            failing: tokio::sync::watch::Sender::new(false),
            requests: std::sync::atomic::AtomicU64::new(0),
        });
        let router = axum::Router::new()
            .route(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                axum::routing::post(token_review),
            )
            .route(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                axum::routing::post(access_review),
            )
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Kubernetes API");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        KubeApi { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for this server, as `kube::Client::try_default()` would build for a cluster.
    pub fn client(&self) -> kube::Client {
        let uri = self.url().parse().expect("server url");
        kube::Client::try_from(kube::Config::new(uri)).expect("kube client")
    }

    /// Creates or replaces `object` (keyed by `metadata.name`) in `collection`, stamping its
    /// resource version, and tells watchers.
    pub fn apply(&self, collection: &str, mut object: Value) {
        let name = object["metadata"]["name"]
            .as_str()
            .expect("object has metadata.name")
            .to_owned();
        let mut store = self.inner.store.lock().expect("store");
        store.resource_version += 1;
        let resource_version = store.resource_version;
        object["metadata"]["resourceVersion"] = json!(resource_version.to_string());
        let objects = store.objects.entry(collection.to_owned()).or_default();
        let kind = if objects.insert(name, object.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        publish(&self.inner, &mut store, collection, kind, object);
    }

    /// Deletes `name` from `collection`; false when it was not there.
    pub fn delete(&self, collection: &str, name: &str) -> bool {
        let mut store = self.inner.store.lock().expect("store");
        let Some(mut object) = store
            .objects
            .get_mut(collection)
            .and_then(|objects| objects.remove(name))
        else {
            return false;
        };
        store.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
        publish(&self.inner, &mut store, collection, "DELETED", object);
        true
    }

    /// TokenReviews of `token` authenticate it as `user`.
    pub fn add_token(&self, token: &str, user: &str) {
        self.inner
            .tokens
            .lock()
            .expect("tokens")
            .insert(token.to_owned(), user.to_owned());
    }

    /// SubjectAccessReviews allow `user` to `get /metrics`.
    pub fn allow_metrics(&self, user: &str) {
        self.inner
            .metrics_readers
            .lock()
            .expect("readers")
            .insert(user.to_owned());
    }

    /// While failing, every request gets a 500 and open watches end.
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.send_replace(failing);
    }

    /// Requests served so far (failed ones included).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }
}

fn publish(inner: &Inner, store: &mut Store, collection: &str, kind: &'static str, object: Value) {
    let event = Event {
        resource_version: store.resource_version,
        collection: collection.to_owned(),
        kind,
        object,
    };
    store.history.push(event.clone());
    let _ = inner.events.send(event);
}

/// The query parameters a watcher sends that matter here.
struct Query {
    watch: bool,
    name: Option<String>,
    since: u64,
}

fn query(uri: &Uri) -> Query {
    let mut query = Query {
        watch: false,
        name: None,
        since: 0,
    };
    for pair in uri.query().unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "watch" => query.watch = value == "true" || value == "1",
            "fieldSelector" => query.name = value.strip_prefix("metadata.name=").map(str::to_owned),
            "resourceVersion" => query.since = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    query
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 500 with a Status body, as an API server whose storage is gone answers (kube's client
/// retries 503s itself, so those would never reach the caller).
fn internal_error() -> Response {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500,
    });
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(status)).into_response()
}

/// Counts the request; while failing, the 500 to answer instead.
fn count_and_check(inner: &Inner) -> Option<Response> {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    (*inner.failing.borrow()).then(internal_error)
}

/// `POST tokenreviews`: the review back with `status.authenticated` and the user.
async fn token_review(
    State(inner): State<Arc<Inner>>,
    axum::Json(mut review): axum::Json<Value>,
) -> Response {
    if let Some(refused) = count_and_check(&inner) {
        return refused;
    }
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let user = inner.tokens.lock().expect("tokens").get(token).cloned();
    review["status"] = match user {
        Some(user) => {
            json!({"authenticated": true, "user": {"username": user, "groups": ["system:authenticated"]}})
        }
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    (StatusCode::CREATED, axum::Json(review)).into_response()
}

/// `POST subjectaccessreviews`: allowed only for a metrics reader's `get /metrics`.
async fn access_review(
    State(inner): State<Arc<Inner>>,
    axum::Json(mut review): axum::Json<Value>,
) -> Response {
    if let Some(refused) = count_and_check(&inner) {
        return refused;
    }
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or_default();
    let asks_for_metrics = spec["nonResourceAttributes"]["path"] == "/metrics"
        && spec["nonResourceAttributes"]["verb"] == "get";
    let allowed = asks_for_metrics
        && inner
            .metrics_readers
            .lock()
            .expect("readers")
            .contains(user);
    review["status"] = json!({"allowed": allowed});
    (StatusCode::CREATED, axum::Json(review)).into_response()
}

async fn handle(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    if let Some(refused) = count_and_check(&inner) {
        return refused;
    }
    let collection = uri.path().trim_start_matches('/').to_owned();
    let query = query(&uri);
    let selected = |object: &Value| {
        query
            .name
            .as_deref()
            .is_none_or(|name| object["metadata"]["name"].as_str() == Some(name))
    };
    if !query.watch {
        let store = inner.store.lock().expect("store");
        let items: Vec<Value> = store
            .objects
            .get(&collection)
            .map(|objects| objects.values().filter(|o| selected(o)).cloned().collect())
            .unwrap_or_default();
        let list = json!({
            "kind": "List",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": store.resource_version.to_string()},
            "items": items,
        });
        return axum::Json(list).into_response();
    }
    // Subscribe before reading the history, so no event falls between the two.
    let live = inner.events.subscribe();
    let backlog: Vec<Event> = {
        let store = inner.store.lock().expect("store");
        store
            .history
            .iter()
            .filter(|event| event.resource_version > query.since)
            .cloned()
            .collect()
    };
    let last_sent = backlog.last().map_or(query.since, |e| e.resource_version);
    let live = tokio_stream_from(live)
        .filter(move |event| std::future::ready(event.resource_version > last_sent));
    let mut failing = inner.failing.subscribe();
    let name = query.name.clone();
    let events = futures::stream::iter(backlog)
        .chain(live)
        .filter(move |event| {
            let keep = event.collection == collection
                && name
                    .as_deref()
                    .is_none_or(|name| event.object["metadata"]["name"].as_str() == Some(name));
            std::future::ready(keep)
        })
        .map(|event| {
            let mut line = json!({"type": event.kind, "object": event.object}).to_string();
            line.push('\n');
            Ok::<_, std::convert::Infallible>(line)
        })
        .take_until(async move {
            let _ = failing.wait_for(|failing| *failing).await;
        });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(events))
        .expect("watch response")
}

/// Broadcast events as a stream; a lagging receiver ends its watch, as an API server ends a
/// watch that fell too far behind (the watcher then re-lists).
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<Event>,
) -> impl futures::Stream<Item = Event> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.ok().map(|event| (event, receiver))
    })
}
