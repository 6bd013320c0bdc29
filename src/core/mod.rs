//! The core: the client, its transport and everything below it. Nothing here
//! imports N-API; the binding layer (`crate::binding`) is the only caller from
//! JavaScript. Within the core, dependencies point down:
//! `error`/`resp`/`command`/`keyscheme` → `events`/`reply`/`metrics` →
//! `tls`/`connection` (the transport) → `client` → `request`.

pub mod client;
pub mod cluster;
pub mod command;
pub mod config;
pub mod connection;
pub mod error;
pub mod events;
pub mod gather;
pub mod json;
pub mod keyscheme;
pub mod link;
pub mod metrics;
pub mod reply;
pub mod request;
pub mod resp;
pub mod runtime;
pub mod scripts;
pub mod tls;

#[cfg(test)]
mod tests {
  /// The layering holds: no file of the core names N-API.
  #[test]
  fn no_napi_below_the_binding() {
    fn visit(dir: &std::path::Path, offenders: &mut Vec<String>) {
      for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
          visit(&path, offenders);
        } else if path.extension().is_some_and(|e| e == "rs") {
          let text = std::fs::read_to_string(&path).unwrap();
          // Spelled in pieces so that this file does not name them itself.
          let needles = [concat!("napi", "::"), concat!("napi", "_derive"), concat!("#[", "napi")];
          if needles.iter().any(|n| text.contains(n)) {
            offenders.push(path.display().to_string());
          }
        }
      }
    }
    let mut offenders = Vec::new();
    visit(
      &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"),
      &mut offenders,
    );
    assert!(offenders.is_empty(), "N-API named in the core: {offenders:?}");
  }
}
