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
/// provider below; and which trust store that is, for the messages of TLS failures.
pub(crate) fn config(config: &Config, base: &str, proxy_tls: bool) -> Result<(TlsConfig, String)> {
    // A `caFile` given is always read, so that a wrong one is reported when the client is made
    // rather than when it first meets https.
    let (roots, store) = if base
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("https:"))
        || proxy_tls
        || config.ca_file.is_some()
    {
        load_roots(config.ca_file.as_deref())?
    } else {
        // Nothing of this client goes over TLS; were it to, an empty store fails closed.
        (
            RootCerts::Specific(Arc::new(Vec::new())),
            "none (no https)".to_owned(),
        )
    };
    Ok((
        TlsConfig::builder()
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(provider())
            .build(),
        store,
    ))
}

/// The environment variable that names directories of CA certificates (OpenSSL's
/// `SSL_CERT_DIR`, colon-separated), read beside the bundle as OpenSSL, curl and Python do.
pub const CA_DIR_ENV: &str = "SSL_CERT_DIR";

/// What the library offers in a handshake, for the message of one that fails on it.
pub(crate) const OFFERED: &str = "this library offers TLS 1.3 and 1.2 with the AES-GCM suites \
     only (ECDHE), key exchange X25519, P-256 and P-384, and checks ECDSA P-256/P-384, Ed25519 \
     and RSA (2048-8192 bits) signatures: a server with only ChaCha20-Poly1305 or CBC suites, \
     or a P-521 key, cannot be reached";

/// The certificates of `ca_file`; else of `$SSL_CERT_FILE` (or the first system bundle that
/// exists) and of the directories of `$SSL_CERT_DIR`; and what they are, for messages.
fn load_roots(ca_file: Option<&str>) -> Result<(RootCerts, String)> {
    let dirs = match ca_file {
        Some(_) => None,
        None => crate::config::env_text(CA_DIR_ENV)?.filter(|d| !d.is_empty()),
    };
    let (path, from, status) = match ca_file {
        Some(p) => (p.to_owned(), "config `caFile`", Status::InvalidArgument),
        None => match crate::config::env_text(CA_FILE_ENV)?.filter(|p| !p.is_empty()) {
            Some(p) => (p, "$SSL_CERT_FILE", Status::Tls),
            None => match SYSTEM_CA_FILES
                .iter()
                .find(|p| std::path::Path::new(p).is_file())
            {
                Some(p) => ((*p).to_owned(), "the system CA store", Status::Tls),
                None if dirs.is_some() => (String::new(), "", Status::Tls),
                None => {
                    return Err(Error::new(
                        Status::Tls,
                        format!(
                            "no CA certificates to verify the server with: none of {} exists; \
                             install the system's CA certificates, or name a PEM bundle in \
                             config `caFile` or $SSL_CERT_FILE (or a directory in \
                             $SSL_CERT_DIR)",
                            SYSTEM_CA_FILES.join(", ")
                        ),
                    ))
                }
            },
        },
    };
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    let mut store = Vec::new();
    if !path.is_empty() {
        let fail = |why: String| Error::new(status, format!("{from} `{path}`: {why}"));
        let found = read_certs(&path).map_err(fail)?;
        if found.is_empty() {
            return Err(fail(
                "holds no certificate (PEM `CERTIFICATE` or `TRUSTED CERTIFICATE`)".to_owned(),
            ));
        }
        store.push(format!("{from} `{path}` ({} certificates)", found.len()));
        certs.extend(found);
    }
    if let Some(dirs) = dirs {
        for dir in dirs.split(':').filter(|d| !d.is_empty()) {
            let fail =
                |why: String| Error::new(Status::Tls, format!("$SSL_CERT_DIR `{dir}`: {why}"));
            let entries =
                std::fs::read_dir(dir).map_err(|e| fail(format!("cannot be read: {e}")))?;
            let mut n = 0;
            for entry in entries.flatten() {
                let p = entry.path();
                // Hashed names (`<hash>.0`, links to the files) and the files themselves;
                // anything that is not a certificate is skipped, as OpenSSL skips it.
                if !p.is_file() {
                    continue;
                }
                if let Ok(found) = read_certs(&p.to_string_lossy()) {
                    n += found.len();
                    certs.extend(found);
                }
            }
            store.push(format!("$SSL_CERT_DIR `{dir}` ({n} certificates)"));
        }
    }
    if certs.is_empty() {
        return Err(Error::new(
            Status::Tls,
            format!("no CA certificates in {}", store.join(" and ")),
        ));
    }
    Ok((RootCerts::Specific(Arc::new(certs)), store.join(" and ")))
}

/// The certificates of a PEM file: `CERTIFICATE` sections, and OpenSSL's `TRUSTED
/// CERTIFICATE` ones (the certificate's DER followed by OpenSSL's trust settings, which are
/// not ours to read: the certificate is kept, as a trust anchor for every purpose).
fn read_certs(path: &str) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut pem))
        .map_err(|e| format!("cannot be read: {e}"))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(format!("is larger than {MAX_CA_FILE} bytes"));
    }
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            // Keys and other sections beside the certificates are not ours to use.
            Ok(_) => {}
            Err(e) => return Err(format!("is not a valid PEM file: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&pem);
    const BEGIN: &str = "-----BEGIN TRUSTED CERTIFICATE-----";
    const END: &str = "-----END TRUSTED CERTIFICATE-----";
    let mut rest = &*text;
    while let Some(at) = rest.find(BEGIN) {
        let body = &rest[at + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or("has a TRUSTED CERTIFICATE section without its END line")?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "has a TRUSTED CERTIFICATE section that is not base64")?;
        let len = der_sequence_len(&der).ok_or("has a TRUSTED CERTIFICATE that is not DER")?;
        certs.push(Certificate::from_der(&der[..len]).to_owned());
        rest = &body[end + END.len()..];
    }
    Ok(certs)
}

/// The length of the DER SEQUENCE at the start of `der` (tag and length included).
fn der_sequence_len(der: &[u8]) -> Option<usize> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let first = *der.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in der.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let total = head.checked_add(len)?;
    (total <= der.len()).then_some(total)
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
