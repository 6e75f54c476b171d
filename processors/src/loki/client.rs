//! The HTTP side of the sink: one push request to Loki, with its credentials, tenant and TLS.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::config::LokiConfig;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A credential or CA file could not be read.
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A header value is not valid (a control character in a token, say).
    #[error("invalid {0} header")]
    Header(&'static str),
    /// The HTTP client or a certificate could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Pushes request bodies to one Loki.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    basic: Option<(String, Option<String>)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.url).finish_non_exhaustive()
    }
}

fn read(path: &std::path::Path) -> Result<String, ClientError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| ClientError::File { path: path.display().to_string(), source })
}

impl Client {
    /// A client for `config`: credentials are read from their files now.
    pub fn new(config: &LokiConfig) -> Result<Client, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(config.format.content_type()));
        if config.format == super::push::Format::Protobuf {
            headers.insert("Content-Encoding", HeaderValue::from_static("snappy"));
        }
        if let Some(tenant) = &config.tenant {
            headers.insert("X-Scope-OrgID", HeaderValue::from_str(tenant).map_err(|_| ClientError::Header("tenant"))?);
        }
        if let Some(file) = &config.bearer_token_file {
            let token = read(file)?;
            let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::Header("bearer"))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .danger_accept_invalid_certs(config.insecure_skip_verify);
        if let Some(ca) = &config.ca_file {
            let pem =
                std::fs::read(ca).map_err(|source| ClientError::File { path: ca.display().to_string(), source })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let basic = match &config.username {
            Some(user) => Some((user.clone(), config.password_file.as_deref().map(read).transpose()?)),
            None => None,
        };
        Ok(Client { http: builder.build()?, url: config.push_url(), basic })
    }

    /// Sends one body; the HTTP status and the start of the response body.
    pub async fn push(&self, body: Vec<u8>) -> Result<(u16, String), reqwest::Error> {
        let mut request = self.http.post(&self.url).body(body);
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, password.as_ref());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let mut text = response.text().await.unwrap_or_default();
        let mut cut = text.len().min(1000);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        Ok((status, text))
    }
}
