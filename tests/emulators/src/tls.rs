//! A throwaway certificate authority for the emulators that speak TLS (APNs always; Push Kit, FCM
//! and WNS when started with TLS, [`crate::Emulators::start_tls`]): a CA and a certificate for
//! `localhost` / `127.0.0.1` signed by it, made at start. Senders trust the CA through
//! `providers.ca_file`.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// A test CA and a server certificate signed by it. Cloning shares them.
#[derive(Clone)]
pub struct TestCa {
    /// The CA certificate, PEM: what clients must trust.
    pub ca_pem: String,
    /// The server configuration (certificate chain, key, ALPN `h2` then `http/1.1`).
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A fresh CA and server certificate.
    pub fn new() -> Result<TestCa, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "callpush emulator test CA");
        let ca_cert = ca.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
        leaf.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;

        let chain = vec![cert.der().clone(), ca_cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TestCa { ca_pem: ca_cert.pem(), server_config: Arc::new(server_config) })
    }

    /// A TLS acceptor presenting this CA's server certificate and offering the application
    /// protocols `alpn` (ALPN ids such as `h2` and `http/1.1`, most preferred first): what a
    /// provider speaks decides what its emulator offers.
    pub fn acceptor(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
        let mut config = (*self.server_config).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
