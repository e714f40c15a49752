//! The `kernel_info_reply` (the same on the shell and control channels).

use super::content::{HelpLink, KernelInfoReply};
use super::shared::Shared;
use super::wire::{self, Message};
use crate::engine::LanguageInfo;

/// The reply to a `kernel_info_request`.
pub(super) fn kernel_info(shared: &Shared, request: &Message) -> Message {
    shared.reply(request, &content())
}

/// What the kernel says about itself.
fn content() -> KernelInfoReply {
    let version = env!("CARGO_PKG_VERSION");
    KernelInfoReply::new(
        wire::PROTOCOL_VERSION,
        "rustmp",
        version,
        LanguageInfo::rust(),
        format!("rustmp {version}: Rust with Python's multiprocessing (use multiprocessing::...)"),
        vec![HelpLink {
            text: "Rust standard library",
            url: "https://doc.rust-lang.org/std/",
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::super::content::wire;
    use super::*;

    #[test]
    fn the_reply_says_what_the_kernel_is_and_speaks() {
        let expected = concat!(
            r#"{"banner":"rustmp {v}: Rust with Python's multiprocessing (use multiprocessing::...)","#,
            r#""help_links":[{"text":"Rust standard library","url":"https://doc.rust-lang.org/std/"}],"#,
            r#""implementation":"rustmp","implementation_version":"{v}","#,
            r#""language_info":{"codemirror_mode":"rust","file_extension":".rs","#,
            r#""mimetype":"text/rust","name":"rust","nbconvert_exporter":"rust","#,
            r#""pygments_lexer":"rust","version":"{rustc}"},"#,
            r#""protocol_version":"5.5","status":"ok","supported_features":[]}"#
        )
        .replace("{v}", env!("CARGO_PKG_VERSION"))
        .replace("{rustc}", &LanguageInfo::rust().version);
        assert_eq!(wire(&content()), expected);
    }
}
