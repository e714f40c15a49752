//! `is_complete_request` and `is_complete_reply` (the verdict is
//! [`super::super::is_complete::check`]'s).

use super::super::is_complete::Verdict;
use super::Content;
use serde::{Deserialize, Serialize};

/// `is_complete_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct IsCompleteRequest {
    /// The code typed so far.
    pub(crate) code: String,
}

/// `is_complete_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum IsCompleteReply {
    /// Ready to run.
    Complete,
    /// Needs more lines.
    Incomplete {
        /// The indent to offer on the next line.
        indent: String,
    },
    /// Cannot become valid by adding lines.
    Invalid,
}

impl From<Verdict> for IsCompleteReply {
    fn from(verdict: Verdict) -> IsCompleteReply {
        match verdict {
            Verdict::Complete => IsCompleteReply::Complete,
            Verdict::Incomplete(indent) => IsCompleteReply::Incomplete { indent },
            Verdict::Invalid => IsCompleteReply::Invalid,
        }
    }
}

impl Content for IsCompleteReply {
    const MSG_TYPE: &'static str = "is_complete_reply";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jupyter::content::wire;

    #[test]
    fn each_verdict_is_the_dict_the_protocol_shows() {
        let json = |v: Verdict| wire(&IsCompleteReply::from(v));
        assert_eq!(json(Verdict::Complete), r#"{"status":"complete"}"#);
        assert_eq!(
            json(Verdict::Incomplete("    ".into())),
            r#"{"indent":"    ","status":"incomplete"}"#
        );
        assert_eq!(json(Verdict::Invalid), r#"{"status":"invalid"}"#);
    }
}
