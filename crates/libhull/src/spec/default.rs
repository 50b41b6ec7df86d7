//! `hull spec`: runc's default config.json, field for field.

/// The config `runc spec` writes (`rootless` = `runc spec --rootless`).
pub fn runc_default(_rootless: bool) -> serde_json::Value {
    serde_json::json!({})
}
