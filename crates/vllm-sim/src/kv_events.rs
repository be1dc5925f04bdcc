//! Publishing the engine's KV-cache changes as vLLM's `KVEventBatch` messages.

use kv_index::{
    events::{BlockHashValue, BlockRemoved, BlockStored, KvEvent, KvEventBatch},
    hash::BlockHash,
    publisher::{KvEventsConfig, Publisher, PublisherConfig, PublisherHandle},
};

use crate::{config::Config, engine::CacheEvent};

/// Errors starting the publisher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--kv-events-config")]
    Config(#[source] kv_index::publisher::Error),
    #[error("kv events publisher")]
    Start(#[source] kv_index::publisher::Error),
}

/// The running publisher and the config `/kv_event_sources` reports.
pub(crate) struct KvEvents {
    handle: PublisherHandle,
    resolved: KvEventsConfig,
    block_size: u32,
}

impl KvEvents {
    /// Starts the publisher vLLM would start for `--kv-events-config`; `None` when events
    /// are off.
    pub(crate) fn start(config: &Config) -> Result<Option<KvEvents>, Error> {
        let Some(json) = &config.kv_events_config else {
            return Ok(None);
        };
        let events_config = KvEventsConfig::from_json(json).map_err(Error::Config)?;
        let Some(publisher_config) =
            PublisherConfig::from_kv_events_config(&events_config, 0).map_err(Error::Config)?
        else {
            return Ok(None);
        };
        if !config.enable_prefix_caching {
            tracing::warn!(
                "KV cache events are on but prefix caching is off; no blocks will be reported."
            );
        }
        let handle = Publisher::start(publisher_config).map_err(Error::Start)?;
        let mut resolved = events_config.resolved();
        resolved.endpoint = handle.endpoint().to_owned();
        resolved.replay_endpoint = handle.replay_endpoint().map(str::to_owned);
        tracing::info!(endpoint = handle.endpoint(), topic = %resolved.topic, "Publishing KV cache events.");
        Ok(Some(KvEvents {
            handle,
            resolved,
            block_size: config.block_size,
        }))
    }

    /// `GET /kv_event_sources`: the resolved config per data-parallel rank.
    pub(crate) fn sources(&self) -> serde_json::Value {
        serde_json::json!({ "0": self.resolved })
    }

    /// The engine's sink: one `KVEventBatch` per engine step that changed the cache.
    pub(crate) fn into_sink(self) -> crate::engine::EventSink {
        let KvEvents {
            handle, block_size, ..
        } = self;
        Box::new(move |events| {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            if !handle.publish(to_batch(events, block_size, ts)) {
                tracing::warn!("KV event batch dropped: the publisher queue is full.");
            }
        })
    }
}

fn wire_hash(hash: &BlockHash) -> BlockHashValue {
    BlockHashValue::U64(hash.external_u64())
}

/// The events a dense-model vLLM's GPU pool emits for these cache changes.
pub(crate) fn to_batch(events: Vec<CacheEvent>, block_size: u32, ts: f64) -> KvEventBatch {
    let events = events
        .into_iter()
        .map(|event| match event {
            CacheEvent::Stored {
                hashes,
                parent,
                token_ids,
                extra_keys,
                lora,
                session_id,
            } => KvEvent::BlockStored(BlockStored {
                block_hashes: hashes.iter().map(wire_hash).collect(),
                parent_block_hash: parent.as_ref().map(wire_hash),
                token_ids,
                block_size,
                lora_id: lora.as_ref().map(|(id, _)| *id),
                medium: Some("GPU".to_owned()),
                lora_name: lora.map(|(_, name)| name),
                extra_keys: Some(extra_keys),
                group_idx: Some(0),
                kv_cache_spec_kind: Some("full_attention".to_owned()),
                kv_cache_spec_sliding_window: None,
                locality: None,
                ownership: None,
                session_id,
                lookahead_token_ids: None,
            }),
            CacheEvent::Removed { hash } => KvEvent::BlockRemoved(BlockRemoved {
                block_hashes: vec![wire_hash(&hash)],
                medium: Some("GPU".to_owned()),
                group_idx: Some(0),
                locality: None,
                ownership: None,
            }),
            CacheEvent::Cleared => KvEvent::AllBlocksCleared,
        })
        .collect();
    KvEventBatch {
        ts,
        events,
        data_parallel_rank: Some(0),
    }
}
