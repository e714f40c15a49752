//! The `kernel_info_reply` (the same on the shell and control channels).

use super::content::{HelpLink, KernelInfoReply};
use super::shared::Shared;
use super::wire::{self, Message};
use crate::engine::LanguageInfo;

/// The reply to a `kernel_info_request`.
pub(super) fn kernel_info(shared: &Shared, request: &Message) -> Message {
    let version = env!("CARGO_PKG_VERSION");
    let content = KernelInfoReply::new(
        wire::PROTOCOL_VERSION,
        "rustmp",
        version,
        LanguageInfo::rust(),
        format!("rustmp {version}: Rust with Python's multiprocessing (use multiprocessing::...)"),
        vec![HelpLink {
            text: "Rust standard library",
            url: "https://doc.rust-lang.org/std/",
        }],
    );
    shared.reply(request, &content)
}

#[cfg(test)]
mod tests {
    use super::super::content::Content;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reply_is_the_dict_json_built() {
        let version = env!("CARGO_PKG_VERSION");
        let reply = KernelInfoReply::new(
            wire::PROTOCOL_VERSION,
            "rustmp",
            version,
            LanguageInfo::rust(),
            "banner".into(),
            vec![HelpLink {
                text: "Rust standard library",
                url: "https://doc.rust-lang.org/std/",
            }],
        );
        assert_eq!(
            reply.to_json(),
            json!({
                "status": "ok",
                "protocol_version": wire::PROTOCOL_VERSION,
                "implementation": "rustmp",
                "implementation_version": version,
                "language_info": {
                    "name": "rust",
                    "version": crate::engine::LanguageInfo::rust().version,
                    "mimetype": "text/rust",
                    "file_extension": ".rs",
                    "pygments_lexer": "rust",
                    "codemirror_mode": "rust",
                    "nbconvert_exporter": "rust"
                },
                "banner": "banner",
                "help_links": [
                    {"text": "Rust standard library", "url": "https://doc.rust-lang.org/std/"}
                ],
                "supported_features": []
            })
        );
    }
}
