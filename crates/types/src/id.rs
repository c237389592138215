use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A job's id: a store-assigned sequence number, shown to clients as a fixed-width
/// 13-character Crockford base32 string so that ids sort by creation time as plain strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const WIDTH: usize = 13;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("not a job id: {0:?}")]
pub struct ParseJobIdError(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [b'0'; WIDTH];
        let mut v = self.0 as u64;
        for slot in buf.iter_mut().rev() {
            *slot = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        // Every byte comes from ALPHABET, which is ASCII.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for JobId {
    type Err = ParseJobIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseJobIdError(s.to_owned());
        if s.len() != WIDTH {
            return Err(err());
        }
        let mut v: u64 = 0;
        for c in s.bytes() {
            let digit = ALPHABET
                .iter()
                .position(|&a| a == c.to_ascii_lowercase())
                .ok_or_else(err)?;
            v = v.checked_mul(32).ok_or_else(err)? | digit as u64;
        }
        i64::try_from(v).map(JobId).map_err(|_| err())
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_as_strings() {
        let ids = [0, 1, 31, 32, 1_000_000, i64::MAX];
        for w in ids.windows(2) {
            let (a, b) = (JobId(w[0]).to_string(), JobId(w[1]).to_string());
            assert!(a < b, "{a} < {b}");
            assert_eq!(a.len(), WIDTH);
        }
        for id in ids {
            assert_eq!(JobId(id).to_string().parse::<JobId>(), Ok(JobId(id)));
        }
    }

    #[test]
    fn rejects_junk() {
        assert!("".parse::<JobId>().is_err());
        assert!("zzzzzzzzzzzzz".parse::<JobId>().is_err());
        assert!("000000000000u".parse::<JobId>().is_err());
        assert!("00000000000001".parse::<JobId>().is_err());
    }
}
