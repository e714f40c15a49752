//! `kernel_info_reply` (the request has no content).

use super::{Content, ReplyStatus};
use crate::engine::LanguageInfo;
use serde::Serialize;

/// A link the frontend's help menu shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HelpLink {
    /// The menu entry.
    pub(crate) text: &'static str,
    /// Where it leads.
    pub(crate) url: &'static str,
}

/// `kernel_info_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct KernelInfoReply {
    status: ReplyStatus,
    /// The protocol version the kernel speaks.
    pub(crate) protocol_version: &'static str,
    /// The kernel's name.
    pub(crate) implementation: &'static str,
    /// The kernel's version.
    pub(crate) implementation_version: &'static str,
    /// The language the cells are written in.
    pub(crate) language_info: LanguageInfo,
    /// The text a console shows at its start.
    pub(crate) banner: String,
    /// The help menu's links.
    pub(crate) help_links: Vec<HelpLink>,
    /// Optional protocol features (none).
    pub(crate) supported_features: Vec<&'static str>,
}

impl KernelInfoReply {
    /// The reply of a kernel `implementation` `implementation_version` speaking
    /// `protocol_version`, the rest given.
    pub(crate) fn new(
        protocol_version: &'static str,
        implementation: &'static str,
        implementation_version: &'static str,
        language_info: LanguageInfo,
        banner: String,
        help_links: Vec<HelpLink>,
    ) -> KernelInfoReply {
        KernelInfoReply {
            status: ReplyStatus::Ok,
            protocol_version,
            implementation,
            implementation_version,
            language_info,
            banner,
            help_links,
            supported_features: Vec::new(),
        }
    }
}

impl Content for KernelInfoReply {
    const MSG_TYPE: &'static str = "kernel_info_reply";
}
