//! Outgoing mail for invitations and password resets, through the SMTP server of
//! `mail.smtp_url` (lettre). Without it there is no mail: invitation links go back to the
//! inviting admin, and "forgot password" sends nothing (see `docs/platform.md`).

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use qrlp_config::MailConfig;

/// How long one SMTP delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `mail.smtp_url` or `mail.from` cannot be used.
    #[error("mail configuration: {0}")]
    Config(String),
    /// The message could not be built (a bad address).
    #[error("mail message: {0}")]
    Message(String),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
}

/// An SMTP client for the configured server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer `config` asks for, or `None` when `mail.smtp_url` is empty.
    ///
    /// # Errors
    /// When the URL or the sender address cannot be used.
    pub fn from_config(config: &MailConfig) -> Result<Option<Mailer>, MailError> {
        if config.smtp_url.trim().is_empty() {
            return Ok(None);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.trim())
            // The URL may carry a password: name the problem, not the value.
            .map_err(|_| MailError::Config("mail.smtp_url is not a usable SMTP URL".into()))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| MailError::Config(format!("mail.from: {e}")))?;
        Ok(Some(Mailer { transport, from }))
    }

    /// Sends a plain-text mail.
    ///
    /// # Errors
    /// A bad recipient address or a failed delivery.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|e| MailError::Message(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Message(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| MailError::Smtp(e.to_string()))
    }
}
