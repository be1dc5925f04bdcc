//! Endpoint set changes, staleness and removal notifications.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::datastore::{Datastore, EndpointSpec};
use crate::framework::EndpointMetrics;

#[test]
fn removed_endpoints_are_reported_and_kept_ones_keep_their_metrics() {
    let datastore = Datastore::new("pool", Some(Duration::from_secs(2)));
    let removed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&removed);
    datastore.on_removed(move |address| sink.lock().unwrap().push(address.to_owned()));
    datastore.set_endpoints(vec![
        EndpointSpec::new("10.0.0.1:1"),
        EndpointSpec::new("10.0.0.2:1"),
    ]);
    assert!(
        datastore.candidates().is_empty(),
        "never scraped: not a candidate"
    );
    let fresh = EndpointMetrics {
        waiting_queue_size: 7,
        updated: Some(Instant::now()),
        ..EndpointMetrics::default()
    };
    datastore.update_metrics(&HashMap::from([("10.0.0.1:1".to_owned(), fresh)]));
    let candidates: Vec<String> = datastore
        .candidates()
        .iter()
        .map(|e| e.address.clone())
        .collect();
    assert_eq!(candidates, ["10.0.0.1:1"]);
    datastore.set_endpoints(vec![
        EndpointSpec::new("10.0.0.1:1"),
        EndpointSpec::new("10.0.0.3:1"),
    ]);
    assert_eq!(*removed.lock().unwrap(), ["10.0.0.2:1"]);
    assert_eq!(datastore.all()[0].metrics.waiting_queue_size, 7);
}

#[test]
fn stale_endpoints_age_out() {
    let datastore = Datastore::new("pool", Some(Duration::from_millis(100)));
    datastore.set_endpoints(vec![EndpointSpec::new("10.0.0.1:1")]);
    let old = EndpointMetrics {
        updated: Instant::now().checked_sub(Duration::from_secs(1)),
        ..EndpointMetrics::default()
    };
    datastore.update_metrics(&HashMap::from([("10.0.0.1:1".to_owned(), old)]));
    assert!(datastore.candidates().is_empty());
}

#[test]
fn without_scraping_every_endpoint_is_a_candidate() {
    let datastore = Datastore::new("pool", None);
    datastore.set_endpoints(vec![EndpointSpec::new("10.0.0.1:1")]);
    assert_eq!(datastore.candidates().len(), 1);
}
