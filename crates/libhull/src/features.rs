//! `hull features`: the runtime-spec features document, stating truthfully what hull supports.

/// The features document as JSON.
pub fn features() -> serde_json::Value {
    serde_json::json!({})
}
