//! DKIM test keys and two verifiers we did not write: Python's dkimpy and
//! mail-auth's own, each given the test key's DNS record directly; and the
//! property of fuzz target `dkim_key`. mail-auth is a dependency of this test
//! kit only (feature `dkim`), never of a product crate.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

/// A private key in a PEM file and the DNS TXT record that publishes it.
pub struct DkimKey {
    _dir: tempfile::TempDir,
    /// The PEM private key (PKCS#8).
    pub pem: PathBuf,
    /// `v=DKIM1; k=rsa|ed25519; p=…`.
    pub record: String,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("openssl is needed to make the DKIM test keys");
    assert!(output.status.success(), "openssl {args:?} failed");
    output.stdout
}

fn make_key(algorithm: &str) -> DkimKey {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join(format!("{algorithm}.pem"));
    let path = pem.to_str().expect("utf-8 path");
    let (kind, spki) = match algorithm {
        "rsa" => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                path,
            ]);
            // p= holds the SubjectPublicKeyInfo of an RSA key (RFC 6376 §3.6.1).
            (
                "rsa",
                openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"]),
            )
        }
        _ => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", path]);
            let der = openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"]);
            // p= holds the bare 32-byte key of Ed25519 (RFC 8463 §4.2).
            ("ed25519", der[der.len() - 32..].to_vec())
        }
    };
    let record = format!(
        "v=DKIM1; k={kind}; p={}",
        encodify::base64::STANDARD.encode(&spki)
    );
    DkimKey {
        _dir: dir,
        pem,
        record,
    }
}

/// The process's RSA (2048-bit) test key.
pub fn rsa_key() -> &'static DkimKey {
    static KEY: OnceLock<DkimKey> = OnceLock::new();
    KEY.get_or_init(|| make_key("rsa"))
}

/// The process's Ed25519 test key.
pub fn ed25519_key() -> &'static DkimKey {
    static KEY: OnceLock<DkimKey> = OnceLock::new();
    KEY.get_or_init(|| make_key("ed25519"))
}

/// What dkimpy says of `message` when `record` is the selector's TXT record:
/// whether every check passed, and its error when not.
pub fn dkimpy_verify(message: &[u8], record: &str) -> (bool, Option<String>) {
    let mut child = Command::new(crate::venv_python())
        .arg(crate::python_script("dkim_verify.py"))
        .arg(record)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python for dkimpy");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write to python");
    let output = child.wait_with_output().expect("dkimpy");
    assert!(
        output.status.success(),
        "dkim_verify.py failed (is dkimpy in .venv? run scripts/test-env): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["signatures"], 1, "one DKIM-Signature expected");
    (
        report["ok"] == true,
        report["error"].as_str().map(str::to_owned),
    )
}

/// A TXT "cache" that holds the test record, so that mail-auth never asks DNS.
struct Records(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _valid_until: std::time::Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// What mail-auth's verifier says of `message`, the record of
/// `selector._domainkey.domain` being `record`: whether every signature passed.
pub fn mail_auth_verify(message: &[u8], domain: &str, selector: &str, record: &str) -> bool {
    let records = Records(Mutex::new(HashMap::new()));
    for name in [
        format!("{selector}._domainkey.{domain}."),
        format!("{selector}._domainkey.{domain}"),
    ] {
        let key = DomainKey::parse(record.as_bytes()).expect("the test record parses");
        records
            .0
            .lock()
            .unwrap()
            .insert(name.into_boxed_str(), Txt::from(key));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let authenticator = MessageAuthenticator::new_cloudflare().expect("resolver");
        let parsed = AuthenticatedMessage::parse(message).expect("mail-auth parses the message");
        let outputs = authenticator
            .verify_dkim(Parameters::new(&parsed).with_txt_cache(&records))
            .await;
        !outputs.is_empty()
            && outputs
                .iter()
                .all(|output| output.result() == &DkimResult::Pass)
    })
}

/// The property of fuzz target `dkim_key`: `DkimSigner::from_pem` never
/// panics on `data` (the key file is untrusted input), and a key it accepts
/// signs a fixed message that mail-auth's verifier accepts under the key's
/// own record, in our wire format.
pub fn check_dkim_key(data: &[u8]) {
    let Ok(signer) = cmsi_mail::DkimSigner::from_pem(data, "example.com", "fuzz", None) else {
        return;
    };
    let message = b"From: =?utf-8?B?6JOd6bK455uR5o6n?= <noreply@example.com>\r\n\
        To: ops@example.com\r\nSubject: key check\r\n\r\nbody  with\truns \r\n\r\n";
    let header = signer.signature(message).expect("an accepted key signs");
    let signed = [header.as_bytes(), message].concat();
    let problems = crate::oracle::wire_violations(&signed);
    assert!(problems.is_empty(), "wire format: {problems:?}");
    assert!(
        mail_auth_verify(&signed, "example.com", "fuzz", &signer.dns_record()),
        "mail-auth refuses the signature of an accepted {} key:\n{header}",
        signer.algorithm()
    );
}
