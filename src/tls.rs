//! TLS: which certificate authorities are trusted, and the rustls provider.
//!
//! Like libcurl on Linux, the library trusts the system's CA store (or a bundle the user names)
//! instead of carrying its own copy of Mozilla's roots: the system store is the one its
//! administrator updates, a corporate proxy's CA is added there or given as `caFile`, and the
//! bundled roots cost 70 KB of every binary.

use std::io::Read;
use std::sync::Arc;

use rustls::crypto::{
    ring, CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::SignatureScheme;
use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts, TlsConfig};

use crate::config::Config;
use crate::error::{Error, Result, Status};

/// The environment variable that names a CA bundle when `caFile` is not set (as for OpenSSL).
pub const CA_FILE_ENV: &str = "SSL_CERT_FILE";

/// Where Linux distributions keep their CA bundle, tried in this order (the list of Go's
/// crypto/x509 and of rustls-native-certs).
pub const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/pki/tls/cacert.pem",            // OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
    "/etc/ssl/cert.pem",                  // Alpine, macOS, BSDs
];

/// Largest CA bundle read, in bytes; a full system bundle is about 220 KB.
const MAX_CA_FILE: u64 = 16 * 1024 * 1024;

/// The TLS settings of a client: its trusted roots (read once, when the client is made) and the
/// provider below.
pub(crate) fn config(config: &Config, base: &str, proxy_tls: bool) -> Result<TlsConfig> {
    // A `caFile` given is always read, so that a wrong one is reported when the client is made
    // rather than when it first meets https.
    let roots = if base
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("https:"))
        || proxy_tls
        || config.ca_file.is_some()
    {
        load_roots(config.ca_file.as_deref())?
    } else {
        // Nothing of this client goes over TLS; were it to, an empty store fails closed.
        RootCerts::Specific(Arc::new(Vec::new()))
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(provider())
        .build())
}

/// The certificates of `ca_file`, else of `$SSL_CERT_FILE`, else of the first system bundle
/// that exists.
fn load_roots(ca_file: Option<&str>) -> Result<RootCerts> {
    let (path, from, status) = match ca_file {
        Some(p) => (p.to_owned(), "config `caFile`", Status::InvalidArgument),
        None => match crate::config::env_text(CA_FILE_ENV)?.filter(|p| !p.is_empty()) {
            Some(p) => (p, "$SSL_CERT_FILE", Status::Tls),
            None => match SYSTEM_CA_FILES
                .iter()
                .find(|p| std::path::Path::new(p).is_file())
            {
                Some(p) => ((*p).to_owned(), "the system CA store", Status::Tls),
                None => {
                    return Err(Error::new(
                        Status::Tls,
                        format!(
                            "no CA certificates to verify the server with: none of {} exists; \
                             install the system's CA certificates, or name a PEM bundle in \
                             config `caFile` or $SSL_CERT_FILE",
                            SYSTEM_CA_FILES.join(", ")
                        ),
                    ))
                }
            },
        },
    };
    let fail = |why: String| Error::new(status, format!("{from} `{path}`: {why}"));
    let mut pem = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut pem))
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(fail(format!("is larger than {MAX_CA_FILE} bytes")));
    }
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            // Keys and other sections beside the certificates are not ours to use.
            Ok(_) => {}
            Err(e) => return Err(fail(format!("is not a valid PEM file: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".to_owned()));
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// rustls on *ring* with what an API client uses. The cipher suites are the AES-GCM ones of
/// TLS 1.3 and 1.2: every TLS 1.3 server must offer TLS_AES_128_GCM_SHA256 (RFC 8446, 9.1)
/// and AES-GCM is what TLS 1.2 servers agree on; the ChaCha20 suites would add 50 KB of
/// assembly for servers that do not exist. Client certificates are not supported, so no
/// signing code is linked. Key exchange groups and signature checks are *ring*'s full set.
///
/// Built from parts rather than by trimming `ring::default_provider()`: whatever that
/// function names stays linked, used or not.
fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite::*;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: ring::ALL_KX_GROUPS.to_vec(),
        signature_verification_algorithms: SIGNATURE_CHECKS,
        secure_random: &OsRandom,
        key_provider: &NoClientKeys,
    })
}

/// *ring*'s signature checks as rustls maps them (rustls' own table for its *ring* provider).
static SIGNATURE_CHECKS: WebPkiSupportedAlgorithms = {
    use webpki::ring::*;
    WebPkiSupportedAlgorithms {
        all: &[
            ECDSA_P256_SHA256,
            ECDSA_P256_SHA384,
            ECDSA_P384_SHA256,
            ECDSA_P384_SHA384,
            ED25519,
            RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            RSA_PKCS1_2048_8192_SHA256,
            RSA_PKCS1_2048_8192_SHA384,
            RSA_PKCS1_2048_8192_SHA512,
            RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        mapping: &[
            // For TLS 1.2 the curve is not fixed by the scheme; for TLS 1.3 it is.
            (
                SignatureScheme::ECDSA_NISTP384_SHA384,
                &[ECDSA_P384_SHA384, ECDSA_P256_SHA384],
            ),
            (
                SignatureScheme::ECDSA_NISTP256_SHA256,
                &[ECDSA_P256_SHA256, ECDSA_P384_SHA256],
            ),
            (SignatureScheme::ED25519, &[ED25519]),
            (
                SignatureScheme::RSA_PSS_SHA512,
                &[RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PSS_SHA384,
                &[RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PSS_SHA256,
                &[RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA512,
                &[RSA_PKCS1_2048_8192_SHA512],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA384,
                &[RSA_PKCS1_2048_8192_SHA384],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA256,
                &[RSA_PKCS1_2048_8192_SHA256],
            ),
        ],
    }
};

/// The kernel's random numbers through *ring*'s `SystemRandom` (getrandom(2)), as rustls'
/// own *ring* provider draws them.
#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> std::result::Result<(), GetRandomFailed> {
        use ::ring::rand::SecureRandom as _;
        ::ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| GetRandomFailed)
    }
}

/// Refuses every private key: the library never presents a client certificate.
#[derive(Debug)]
struct NoClientKeys;

impl KeyProvider for NoClientKeys {
    fn load_private_key(
        &self,
        _key: PrivateKeyDer<'static>,
    ) -> std::result::Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "client certificates are not supported".to_owned(),
        ))
    }
}
