//! The generic JSON format (`super::super::generic`): field-name variants, HMAC or Basic.

use serde_json::Value;

use super::super::generic::{MoError, MoMessage, parse_mo_items, parse_mo_value};
use super::{BatchError, ItemError, ItemResult, MoItem, phone};

fn convert(index: usize, r: Result<MoMessage, MoError>, raw: &Value) -> ItemResult {
    let m = r.map_err(|e| {
        let code = match e {
            MoError::BadTime { .. } => "invalid_time",
            MoError::MissingField { .. } => "missing_field",
            _ => "malformed_item",
        };
        ItemError::new(index, raw, code, e.to_string())
    })?;
    let from = phone(&m.from).ok_or_else(|| {
        let mut e = ItemError::new(
            index,
            &m.raw,
            "invalid_sender",
            "sender is not a phone number",
        );
        e.id = Some(m.id.clone());
        e
    })?;
    Ok(MoItem {
        id: m.id,
        from,
        to: m.to,
        body: m.body,
        time: m.received_at,
        raw: m.raw,
    })
}

pub fn parse_push(body: &[u8]) -> Result<Vec<ItemResult>, BatchError> {
    let raws: Vec<Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(a)) => a,
        Ok(v) => vec![v],
        Err(_) => Vec::new(),
    };
    let items = parse_mo_items(body).map_err(|e| BatchError(e.to_string()))?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, r)| convert(i, r, raws.get(i).unwrap_or(&Value::Null)))
        .collect())
}

pub fn item(index: usize, v: &Value) -> ItemResult {
    match parse_mo_value(v.clone()) {
        Ok(mut items) if items.len() == 1 => convert(index, items.remove(0), v),
        Ok(_) => Err(ItemError::new(
            index,
            v,
            "malformed_item",
            "expected one message",
        )),
        Err(e) => Err(ItemError::new(index, v, "malformed_item", e.to_string())),
    }
}
