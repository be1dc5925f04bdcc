//! `--metrics-endpoint-auth`: `/metrics` answers only a bearer token that the API server
//! authenticates (TokenReview) and authorizes for `get` on the non-resource URL `/metrics`
//! (SubjectAccessReview), as upstream's controller-runtime filter does. The inferencepool
//! chart gives the EPP's ServiceAccount both `create` permissions and Prometheus a token
//! bound to a metrics-reader role.
//!
//! Verdicts are cached per token for [`CACHE_TTL`], so a scrape every few seconds costs two
//! API calls a minute. Every refusal is counted in `llm_d_epp_metrics_auth_denied_total`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::telemetry::Metrics;

/// How long a token's verdict is reused.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(60);
/// Tokens remembered at most (each scraper has one; more means someone is guessing).
const CACHE_CAPACITY: usize = 1024;

/// Why a scrape was refused, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    /// No `Authorization: Bearer` header.
    MissingToken,
    /// The API server did not authenticate the token.
    Unauthenticated,
    /// Authenticated, but not allowed to `get /metrics`.
    Forbidden,
    /// The review itself failed (API server down, no permission to create reviews).
    ReviewFailed,
}

impl Denied {
    fn reason(self) -> &'static str {
        match self {
            Denied::MissingToken => "missing_token",
            Denied::Unauthenticated => "unauthenticated",
            Denied::Forbidden => "forbidden",
            Denied::ReviewFailed => "review_failed",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Denied::MissingToken | Denied::Unauthenticated => StatusCode::UNAUTHORIZED,
            Denied::Forbidden => StatusCode::FORBIDDEN,
            Denied::ReviewFailed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A token's verdict and when it was reached.
type Verdict = (Instant, Result<(), Denied>);

/// The guard of one EPP's `/metrics`.
pub(crate) struct MetricsAuth {
    client: kube::Client,
    metrics: Arc<Metrics>,
    /// Token → its verdict.
    cache: parking_lot::Mutex<HashMap<String, Verdict>>,
}

impl MetricsAuth {
    pub(crate) fn new(client: kube::Client, metrics: Arc<Metrics>) -> MetricsAuth {
        MetricsAuth {
            client,
            metrics,
            cache: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when the request may read the metrics, else the status and a message.
    pub(crate) async fn check(&self, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        let verdict = match bearer(headers) {
            None => Err(Denied::MissingToken),
            Some(token) => self.verdict(token).await,
        };
        verdict.map_err(|denied| {
            self.metrics.metrics_auth_denied.inc(&[denied.reason()]);
            tracing::debug!(reason = denied.reason(), "Refused a /metrics scrape.");
            (denied.status(), format!("{}\n", denied.reason()))
        })
    }

    async fn verdict(&self, token: &str) -> Result<(), Denied> {
        if let Some((at, verdict)) = self.cache.lock().get(token)
            && at.elapsed() < CACHE_TTL
        {
            return *verdict;
        }
        let verdict = self.review(token).await;
        // A failed review is not remembered: the next scrape asks again.
        if verdict != Err(Denied::ReviewFailed) {
            let mut cache = self.cache.lock();
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), (Instant::now(), verdict));
        }
        verdict
    }

    async fn review(&self, token: &str) -> Result<(), Denied> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                ..TokenReviewSpec::default()
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "TokenReview failed.");
                Denied::ReviewFailed
            })?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(Denied::Unauthenticated);
        }
        let user = status.user.unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".to_owned()),
                    verb: Some("get".to_owned()),
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let decided = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "SubjectAccessReview failed.");
                Denied::ReviewFailed
            })?;
        if decided.status.is_some_and(|status| status.allowed) {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
