//! What an instance reports: its `instances` row (a heartbeat every few
//! seconds and after every change) and the `dbroute_router_info` gauge.

use std::sync::PoisonError;

use metrics::Label;

use super::error::RegistryError;
use super::follow::Follower;
use crate::engine::Engine;
use crate::router::wasm::tiers::Tier;

/// The engine's decisions so far, over every connection.
pub(crate) fn total_decisions(engine: &Engine) -> u64 {
    engine.decision_counts().iter().map(|c| c.reads + c.writes).sum()
}

/// Writes the instance's row: what it runs, since when, its last error.
pub(crate) async fn heartbeat(follower: &Follower, engine: &Engine) -> Result<(), RegistryError> {
    let generation = engine.router_status().generation;
    let (version, sha256, tier, decisions, faults, last_error) = {
        let state = follower.state.lock().unwrap_or_else(PoisonError::into_inner);
        let running = state.running.as_ref();
        (
            running.map(|r| r.version),
            running.map(|r| r.sha256.clone()),
            running.map(|r| tier_name(r.router.tier())),
            running.map_or(0, |r| total_decisions(engine).saturating_sub(r.decisions_at_load)),
            running.map(|r| i64::try_from(r.faults()).unwrap_or(i64::MAX)),
            state.last_error.clone(),
        )
    };
    sqlx::query(
        "INSERT INTO instances (instance_id, service, host, router, version, sha256, generation, tier, decisions, faults, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (instance_id) DO UPDATE SET
             service = EXCLUDED.service, host = EXCLUDED.host, router = EXCLUDED.router,
             version = EXCLUDED.version, sha256 = EXCLUDED.sha256, generation = EXCLUDED.generation,
             tier = EXCLUDED.tier, decisions = EXCLUDED.decisions, faults = EXCLUDED.faults, last_error = EXCLUDED.last_error,
             last_heartbeat = now()",
    )
    .bind(&follower.instance_id)
    .bind(&follower.settings.service)
    .bind(&follower.host)
    .bind(follower.settings.router_name())
    .bind(version)
    .bind(sha256)
    .bind(i64::try_from(generation).unwrap_or(i64::MAX))
    .bind(tier)
    .bind(i64::try_from(decisions).unwrap_or(i64::MAX))
    .bind(faults)
    .bind(last_error)
    .execute(&follower.pool)
    .await
    .map_err(|e| RegistryError::query("record the instance's heartbeat", e))?;
    Ok(())
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Baseline => "baseline",
        Tier::Optimized => "optimized",
    }
}

/// Sets the info-style gauge `dbroute_router_info` (1 for what runs now,
/// with the router, version, SHA-256 and rollout state as labels; 0 for
/// what ran before), so dashboards show a rollout without the CLI.
pub(crate) fn refresh_gauge(follower: &Follower) {
    let state = follower.state.lock().unwrap_or_else(PoisonError::into_inner);
    let labels = |version: String, sha256: String, rollout: &'static str| {
        vec![
            Label::new("service", follower.settings.service.clone()),
            Label::new("router", follower.settings.router_name().to_owned()),
            Label::new("instance", follower.instance_id.clone()),
            Label::new("version", version),
            Label::new("sha256", sha256),
            Label::new("rollout_state", rollout),
        ]
    };
    let rollout = state.rollout_state.map_or("none", |s| s.as_str());
    let now = state
        .running
        .as_ref()
        .map(|r| labels(r.version.to_string(), r.sha256.clone(), rollout));
    let mut shown = follower.gauge_labels.lock().unwrap_or_else(PoisonError::into_inner);
    if shown.as_ref() != now.as_ref() {
        if let Some(before) = shown.take() {
            metrics::gauge!("dbroute_router_info", before).set(0.0);
        }
        if let Some(now) = &now {
            metrics::gauge!("dbroute_router_info", now.clone()).set(1.0);
        }
        *shown = now;
    }
}
