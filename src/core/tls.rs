//! TLS for `rediss://`, sans-I/O: rustls's `ClientConnection` encrypts and
//! decrypts, and the connection moves the bytes itself (written on the
//! caller's thread, read by the same reader as plain TCP). This module builds
//! the rustls configuration (trusted roots, SNI, certificate checks) and runs
//! the TLS handshake on a tokio socket.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;

use super::error::{Failure, FailureKind};

/// What the TLS side of a connection needs, resolved from the options once per client.
#[derive(Clone)]
pub struct TlsSettings {
  config: Arc<rustls::ClientConfig>,
  /// The name the certificate must carry (and SNI, for a DNS name).
  server_name: ServerName<'static>,
}

/// The trusted roots: `caFile` when given; else, as Node's own TLS does, the
/// public roots plus every certificate in the file named by `NODE_EXTRA_CA_CERTS`.
fn roots(ca_file: Option<&str>) -> Result<RootCertStore, Failure> {
  let mut roots = RootCertStore::empty();
  let add_file = |roots: &mut RootCertStore, file: &str, what: &str| -> Result<usize, Failure> {
    let pem = std::fs::read(file)
      .map_err(|e| Failure::fatal(FailureKind::Invalid, format!("cannot read {what} {file}: {e}")))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
      let cert = cert.map_err(|e| Failure::fatal(FailureKind::Invalid, format!("{what} {file} is not PEM: {e}")))?;
      roots
        .add(cert)
        .map_err(|e| Failure::fatal(FailureKind::Invalid, format!("{what} {file}: {e}")))?;
      added += 1;
    }
    if added == 0 {
      return Err(Failure::fatal(
        FailureKind::Invalid,
        format!("{what} {file} holds no certificate"),
      ));
    }
    Ok(added)
  };
  match ca_file {
    Some(file) => {
      add_file(&mut roots, file, "tls.caFile")?;
    }
    None => {
      roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
      if let Some(extra) = std::env::var_os("NODE_EXTRA_CA_CERTS").filter(|v| !v.is_empty()) {
        // Node warns and goes on when this file cannot be read; so do we.
        let _ = add_file(&mut roots, &extra.to_string_lossy(), "NODE_EXTRA_CA_CERTS");
      }
    }
  }
  Ok(roots)
}

/// Accepts any certificate (`rejectUnauthorized: false`, for tests only), but
/// still checks that the handshake was signed by the key it presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
  fn verify_server_cert(
    &self,
    _end_entity: &CertificateDer<'_>,
    _intermediates: &[CertificateDer<'_>],
    _server_name: &ServerName<'_>,
    _ocsp_response: &[u8],
    _now: UnixTime,
  ) -> Result<ServerCertVerified, rustls::Error> {
    Ok(ServerCertVerified::assertion())
  }

  fn verify_tls12_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
  }

  fn verify_tls13_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
  }

  fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
    self.0.signature_verification_algorithms.supported_schemes()
  }
}

impl TlsSettings {
  /// The settings for `host` with the client's TLS options.
  pub fn new(
    host: &str,
    ca_file: Option<&str>,
    reject_unauthorized: bool,
    servername: Option<&str>,
  ) -> Result<Self, Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
      .with_safe_default_protocol_versions()
      .map_err(|e| Failure::fatal(FailureKind::Invalid, format!("TLS configuration: {e}")))?;
    let config = if reject_unauthorized {
      builder.with_root_certificates(roots(ca_file)?).with_no_client_auth()
    } else {
      builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth()
    };
    let name = servername.unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string())
      .map_err(|e| Failure::fatal(FailureKind::Invalid, format!("invalid TLS server name {name}: {e}")))?;
    Ok(Self {
      config: Arc::new(config),
      server_name,
    })
  }

  /// A new rustls client for one connection (its sends are never held back:
  /// the connection's own backlog deals with a full socket).
  pub fn client(&self) -> Result<ClientConnection, Failure> {
    let mut conn = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
      .map_err(|e| Failure::fatal(FailureKind::Invalid, format!("TLS: {e}")))?;
    conn.set_buffer_limit(None);
    Ok(conn)
  }
}

/// A failure of TLS itself: a certificate that is refused is fatal (another
/// attempt would be refused too), anything else is a connection failure.
pub fn tls_failure(error: rustls::Error, peer: &str) -> Failure {
  let fatal = matches!(
    error,
    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
  );
  let message = format!("TLS with {peer} failed: {error}");
  if fatal {
    Failure::fatal(FailureKind::Connection, message)
  } else {
    Failure::new(FailureKind::Connection, message)
  }
}

/// Writes every TLS record rustls has ready to the (non-blocking) socket.
async fn flush(stream: &TcpStream, conn: &mut ClientConnection, peer: &str) -> Result<(), Failure> {
  let io = |e: std::io::Error| Failure::new(FailureKind::Connection, format!("{e} ({peer})"));
  let mut out = Vec::new();
  while conn.wants_write() {
    conn.write_tls(&mut out).map_err(io)?;
  }
  let mut written = 0;
  while written < out.len() {
    stream.writable().await.map_err(io)?;
    match stream.try_write(&out[written..]) {
      Ok(n) => written += n,
      Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
      Err(e) => return Err(io(e)),
    }
  }
  Ok(())
}

/// Reads what the socket has, feeds it to rustls and appends the plaintext to
/// `plain`; returns false when the peer closed.
async fn receive(
  stream: &TcpStream,
  conn: &mut ClientConnection,
  plain: &mut Vec<u8>,
  peer: &str,
) -> Result<bool, Failure> {
  let io = |e: std::io::Error| Failure::new(FailureKind::Connection, format!("{e} ({peer})"));
  let mut chunk = [0u8; 16 * 1024];
  let n = loop {
    stream.readable().await.map_err(io)?;
    match stream.try_read(&mut chunk) {
      Ok(n) => break n,
      Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
      Err(e) => return Err(io(e)),
    }
  };
  if n == 0 {
    return Ok(false);
  }
  let open = decrypt(conn, &chunk[..n], plain).map_err(|e| match e {
    Decrypt::Tls(e) => tls_failure(e, peer),
    Decrypt::Io(e) => io(e),
  })?;
  // Alerts or key updates rustls wants to answer.
  flush(stream, conn, peer).await?;
  Ok(open)
}

/// Why decryption stopped.
pub enum Decrypt {
  Tls(rustls::Error),
  Io(std::io::Error),
}

/// Feeds ciphertext to rustls and appends the plaintext it yields to `plain`;
/// returns false once the peer has closed the TLS session.
pub fn decrypt(conn: &mut ClientConnection, mut cipher: &[u8], plain: &mut Vec<u8>) -> Result<bool, Decrypt> {
  while !cipher.is_empty() {
    conn.read_tls(&mut cipher).map_err(Decrypt::Io)?;
    let state = conn.process_new_packets().map_err(Decrypt::Tls)?;
    let available = state.plaintext_bytes_to_read();
    if available > 0 {
      let start = plain.len();
      plain.resize(start + available, 0);
      conn.reader().read_exact(&mut plain[start..]).map_err(Decrypt::Io)?;
    }
    if state.peer_has_closed() {
      return Ok(false);
    }
  }
  Ok(true)
}

/// Encrypts `plain` and appends the TLS records to `out`.
pub fn encrypt(conn: &mut ClientConnection, plain: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
  conn.writer().write_all(plain)?;
  while conn.wants_write() {
    conn.write_tls(out)?;
  }
  Ok(())
}

/// The TLS handshake on `stream`.
pub async fn handshake(stream: &TcpStream, conn: &mut ClientConnection, peer: &str) -> Result<(), Failure> {
  let mut early = Vec::new();
  while conn.is_handshaking() {
    flush(stream, conn, peer).await?;
    if conn.is_handshaking() && conn.wants_read() && !receive(stream, conn, &mut early, peer).await? {
      return Err(Failure::new(
        FailureKind::Connection,
        format!("{peer} closed the connection during the TLS handshake"),
      ));
    }
  }
  flush(stream, conn, peer).await
}

/// Sends `plain` over TLS (during the Redis handshake).
pub async fn send(stream: &TcpStream, conn: &mut ClientConnection, plain: &[u8], peer: &str) -> Result<(), Failure> {
  conn
    .writer()
    .write_all(plain)
    .map_err(|e| Failure::new(FailureKind::Connection, format!("{e} ({peer})")))?;
  flush(stream, conn, peer).await
}

/// Waits for more plaintext (during the Redis handshake); false when the peer closed.
pub async fn recv(
  stream: &TcpStream,
  conn: &mut ClientConnection,
  plain: &mut Vec<u8>,
  peer: &str,
) -> Result<bool, Failure> {
  let before = plain.len();
  while plain.len() == before {
    if !receive(stream, conn, plain, peer).await? {
      return Ok(false);
    }
  }
  Ok(true)
}
