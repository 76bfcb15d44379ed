//! A valid access token from the AWS CLI token cache (placeholder: no renewal).

use secrecy::SecretString;

use super::session::SsoSession;
use crate::error::{Error, Result};

/// A valid access token for the session, else exit 5 with `elhaz sso login LABEL`.
pub(crate) async fn access_token(session: &SsoSession) -> Result<SecretString> {
    use sha1_smol_free::hex_sha1;
    let label = session.label();
    let expired = || {
        Error::auth(format!(
            "SSO session '{label}' has expired; run: elhaz sso login {label}"
        ))
    };
    let home = crate::fsutil::home_dir()?;
    let file = home
        .join(".aws/sso/cache")
        .join(format!("{}.json", hex_sha1(label)));
    let Ok(text) = std::fs::read_to_string(file) else {
        return Err(expired());
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| expired())?;
    let expires = v["expiresAt"].as_str().unwrap_or_default();
    let fmt = time::format_description::well_known::Rfc3339;
    let Ok(at) = time::OffsetDateTime::parse(expires, &fmt) else {
        return Err(expired());
    };
    match v["accessToken"].as_str() {
        Some(t) if at > time::OffsetDateTime::now_utc() => Ok(SecretString::from(t.to_string())),
        _ => Err(expired()),
    }
}

/// SHA-1 of the cache file's name (placeholder; the real module has its own).
mod sha1_smol_free {
    pub(super) fn hex_sha1(s: &str) -> String {
        let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
        let mut m = s.as_bytes().to_vec();
        let bits = (m.len() as u64) * 8;
        m.push(0x80);
        while m.len() % 64 != 56 {
            m.push(0);
        }
        m.extend_from_slice(&bits.to_be_bytes());
        for chunk in m.chunks(64) {
            let mut w = [0u32; 80];
            for i in 0..16 {
                w[i] = u32::from_be_bytes([
                    chunk[4 * i],
                    chunk[4 * i + 1],
                    chunk[4 * i + 2],
                    chunk[4 * i + 3],
                ]);
            }
            for i in 16..80 {
                w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
            }
            let [mut a, mut b, mut c, mut d, mut e] = h;
            for (i, wi) in w.iter().enumerate() {
                let (f, k) = match i {
                    0..=19 => ((b & c) | (!b & d), 0x5A827999),
                    20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                    40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                    _ => (b ^ c ^ d, 0xCA62C1D6),
                };
                let t = a
                    .rotate_left(5)
                    .wrapping_add(f)
                    .wrapping_add(e)
                    .wrapping_add(k)
                    .wrapping_add(*wi);
                e = d;
                d = c;
                c = b.rotate_left(30);
                b = a;
                a = t;
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
                *x = x.wrapping_add(y);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }
}
