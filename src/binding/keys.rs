//! Exports of the key scheme and the command table, for `RedisKeys`,
//! `RedisTTL`, the raw client's methods and the services' key handling.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::js_error;
use crate::core::keyscheme::{self, DefaultTtl, IdArg, PartInfo};
use crate::core::{client, command};

/// `text` with SCAN-pattern characters escaped, so that it matches only itself.
#[napi(js_name = "globEscape")]
pub fn glob_escape(text: String) -> String {
  keyscheme::glob_escape(&text)
}

/// One builder as JS sees it, to build `RedisKeys` and `RedisTTL`.
#[napi(object)]
pub struct KeyBuilderInfo {
  pub family: String,
  pub name: String,
  /// How many arguments it requires.
  pub required_args: u32,
  /// How many arguments it accepts.
  pub max_args: u32,
  /// Default TTL in seconds, or null when keys persist.
  pub ttl: Option<u32>,
  /// The key's template, in order (see `KeyPart`).
  pub parts: Vec<KeyPart>,
}

/// One piece of a builder's template: `kind` is `'text'` (fixed `text`),
/// `'id'` (a required id) or `'optionalId'` (an id written after `text`, the
/// separator, when it is given).
#[napi(object)]
pub struct KeyPart {
  pub kind: String,
  pub text: String,
}

/// A JS regular expression (source, no flags) matching exactly the non-empty
/// ids that a builder writes unchanged (no character to escape): keys of such
/// ids are composed in JS from the builders' parts; any other id goes to `buildKey`.
#[napi]
pub fn plain_id_pattern() -> String {
  keyscheme::plain_id_pattern()
}

/// The key scheme, for the JS layer to build `RedisKeys` and `RedisTTL` from.
#[napi]
pub fn key_scheme() -> Vec<KeyBuilderInfo> {
  keyscheme::key_scheme()
    .map(|b| KeyBuilderInfo {
      family: b.family.to_string(),
      name: b.name.to_string(),
      required_args: b.required_args,
      max_args: b.max_args,
      ttl: b.ttl,
      parts: b
        .parts
        .into_iter()
        .map(|p| match p {
          PartInfo::Text(t) => KeyPart {
            kind: "text".into(),
            text: t.into(),
          },
          PartInfo::Id => KeyPart {
            kind: "id".into(),
            text: String::new(),
          },
          PartInfo::OptionalId { separator } => KeyPart {
            kind: "optionalId".into(),
            text: separator.into(),
          },
        })
        .collect(),
    })
    .collect()
}

/// The TTL in seconds a cache write of `key` (written without `keyPrefix`) gets
/// when none is given: its prefix's default; 0 for `jobs:`, `counter:` and
/// `flag:` keys, which persist.
#[napi]
pub fn default_ttl(key: String) -> u32 {
  match keyscheme::default_ttl_for(key.as_bytes()) {
    DefaultTtl::Seconds(s) => s,
    DefaultTtl::Persist => 0,
  }
}

/// Default TTL per prefix (`[prefix, seconds | null]`), for `RedisTTL.<family>.default`.
#[napi]
pub fn prefix_ttls() -> Vec<(String, Option<u32>)> {
  keyscheme::PREFIX_TTLS
    .iter()
    .map(|(p, t)| (p.to_string(), *t))
    .collect()
}

/// A JS value as an id argument of a builder.
fn id_arg(value: Option<Unknown>) -> Result<IdArg> {
  let Some(value) = value else {
    return Ok(IdArg::Missing);
  };
  Ok(match value.get_type()? {
    ValueType::Undefined => IdArg::Missing,
    ValueType::Null => IdArg::Null,
    // SAFETY: the value's type was just checked to be a string.
    ValueType::String => IdArg::Text(unsafe { value.cast::<String>()? }),
    // SAFETY: the value's type was just checked to be a number.
    ValueType::Number => IdArg::Number(unsafe { value.cast::<f64>()? }),
    ValueType::Boolean => IdArg::Other("boolean"),
    ValueType::Symbol => IdArg::Other("symbol"),
    ValueType::Object => IdArg::Other("object"),
    ValueType::Function => IdArg::Other("function"),
    ValueType::External => IdArg::Other("external"),
    ValueType::BigInt => IdArg::Other("bigint"),
    _ => IdArg::Other("unknown"),
  })
}

/// Builds the key of builder `index` (from `keyScheme()`) for the given ids.
#[napi]
pub fn build_key(index: u32, first: Option<Unknown>, second: Option<Unknown>) -> Result<String> {
  keyscheme::build_key(index as usize, [id_arg(first)?, id_arg(second)?]).map_err(js_error)
}

/// The commands the raw client has a method for (the command table minus the
/// commands the shared connection refuses).
#[napi]
pub fn known_commands() -> Vec<&'static str> {
  command::known_commands()
}

/// The key of a lock's fencing counter (same hash slot as the lock, with `keyPrefix` in force).
#[napi]
pub fn fencing_key(key: String) -> Result<String> {
  let prefix = client::key_prefix().map_err(js_error)?;
  Ok(keyscheme::fencing_key_for(&prefix, &key))
}

/// The key of a counter's per-minute buckets, from its metric key
/// (`RedisKeys.counter.metric(name, id)`); one key, so one hash slot.
#[napi]
pub fn counter_series_key(metric_key: String) -> Result<String> {
  keyscheme::counter_series_key_for(&metric_key).map_err(js_error)
}

/// The Redis Cluster hash slot of `key` as the server sees it (with `keyPrefix`
/// in front, and `{hash tags}` honoured).
#[napi]
pub fn key_slot(key: String) -> Result<u32> {
  let prefix = client::key_prefix().map_err(js_error)?;
  Ok(crate::core::cluster::slot::key_slot_parts(&[&prefix, key.as_bytes()]) as u32)
}

/// Whether the client in force (the open one, else the next one) is a
/// cluster's: asked before `clusterKeySlots`, so that one server's hot path
/// never converts its keys for nothing.
#[napi]
pub fn cluster_mode() -> Result<bool> {
  Ok(client::cluster_key_prefix().map_err(js_error)?.is_some())
}

/// The hash slots of `keys` (with `keyPrefix` in front) when the client in
/// force is a cluster's, else null (one server: any keys share a script).
#[napi]
pub fn cluster_key_slots(keys: Vec<String>) -> Result<Option<Vec<u32>>> {
  let Some(prefix) = client::cluster_key_prefix().map_err(js_error)? else {
    return Ok(None);
  };
  let slot = |key: &String| crate::core::cluster::slot::key_slot_parts(&[&prefix, key.as_bytes()]) as u32;
  Ok(Some(keys.iter().map(slot).collect()))
}
