//! The participant side: which DARs the node holds (admin
//! `PackageService.ListDars`) and uploading one (`UploadDar`), behind the
//! [`DarService`] trait so the sync logic can be tested without a node.
//!
//! # Listing every DAR with `ListDars`
//!
//! `ListDarsRequest` has only `limit` (0 = no limit) and `filter_name` (a
//! name prefix): no page token, and no promised order. Paging by name prefix
//! would need an ordering Canton does not promise, so [`list_all`] asks with
//! a limit and, when the answer fills it (it may have been cut), asks again
//! with twice the limit, until an answer comes back short. A node with n DARs
//! is listed in at most log2(n / limit) + 1 calls, each bounded; a limit of 0
//! is never sent, so no call can be unbounded.

use canton_client::{CantonChannel, CantonError, grpc_client};
use canton_proto::admin::package_service_client::PackageServiceClient;
use canton_proto::admin::upload_dar_request::UploadDarData;
use canton_proto::admin::{ListDarsRequest, UploadDarRequest};
use serde::Serialize;
use std::future::Future;

/// Name prefix of the DARs every participant uploads itself
/// (`canton-builtin-admin-workflow-ping`, `…-party-replication-alpha`).
pub const BUILTIN_PREFIX: &str = "canton-builtin-admin-workflow-";

/// A DAR the node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDar {
    /// Main package id.
    pub main_package_id: String,
    /// Main package name.
    pub name: String,
    /// Main package version.
    pub version: String,
    /// The description given at upload.
    pub description: String,
}

impl NodeDar {
    /// True for the admin-workflow DARs Canton uploads itself.
    pub fn is_builtin(&self) -> bool {
        self.name.starts_with(BUILTIN_PREFIX)
    }
}

/// What an upload sends besides the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// `vet_all_packages`.
    pub vet_all_packages: bool,
    /// `synchronize_vetting`.
    pub synchronize_vetting: bool,
    /// `synchronizer_id` (Canton 3.4, needed with several synchronizers).
    pub synchronizer_id: Option<String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            vet_all_packages: true,
            synchronize_vetting: true,
            synchronizer_id: None,
        }
    }
}

/// One DAR to upload.
#[derive(Debug, Clone)]
pub struct UploadItem {
    /// The DAR file's bytes.
    pub bytes: Vec<u8>,
    /// `description` (at most 255 characters, else omitted).
    pub description: Option<String>,
    /// `expected_main_package_id`: the node refuses the DAR if its main
    /// package id differs.
    pub expected_main_package_id: String,
}

/// The node's DAR API.
pub trait DarService {
    /// One `ListDars` call.
    fn list_dars(&self, limit: i32) -> impl Future<Output = Result<Vec<NodeDar>, CantonError>>;
    /// One `UploadDar` call for one DAR; returns the main package id the node reports.
    fn upload_dar(
        &self,
        item: UploadItem,
        options: &UploadOptions,
    ) -> impl Future<Output = Result<Vec<String>, CantonError>>;
}

/// Every DAR the node holds (see the module docs), sorted by main package id.
pub async fn list_all(
    service: &impl DarService,
    first_limit: u32,
) -> Result<Vec<NodeDar>, CantonError> {
    let mut limit = i32::try_from(first_limit.max(1)).unwrap_or(i32::MAX);
    loop {
        let mut dars = service.list_dars(limit).await?;
        let full = dars.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
        if !full || limit == i32::MAX {
            dars.sort_by(|a, b| a.main_package_id.cmp(&b.main_package_id));
            dars.dedup_by(|a, b| a.main_package_id == b.main_package_id);
            return Ok(dars);
        }
        tracing::debug!("ListDars filled its limit of {limit}; asking again with a larger one");
        limit = limit.saturating_mul(2);
    }
}

/// [`DarService`] over a participant's admin API.
#[derive(Debug, Clone)]
pub struct AdminDarService {
    conn: CantonChannel,
}

impl AdminDarService {
    /// Uses `conn` (retries, token, TLS and message-size limit come with it).
    pub fn new(conn: CantonChannel) -> Self {
        AdminDarService { conn }
    }
}

impl DarService for AdminDarService {
    async fn list_dars(&self, limit: i32) -> Result<Vec<NodeDar>, CantonError> {
        let client = grpc_client!(PackageServiceClient, self.conn);
        let response = self
            .conn
            .call(|_| {
                let mut client = client.clone();
                async move {
                    client
                        .list_dars(ListDarsRequest {
                            limit,
                            filter_name: String::new(),
                        })
                        .await
                }
            })
            .await?;
        Ok(response
            .into_inner()
            .dars
            .into_iter()
            .map(|d| NodeDar {
                main_package_id: d.main,
                name: d.name,
                version: d.version,
                description: d.description,
            })
            .collect())
    }

    async fn upload_dar(
        &self,
        item: UploadItem,
        options: &UploadOptions,
    ) -> Result<Vec<String>, CantonError> {
        let client = grpc_client!(PackageServiceClient, self.conn);
        let request = UploadDarRequest {
            dars: vec![UploadDarData {
                bytes: item.bytes,
                description: item.description.filter(|d| d.chars().count() <= 255),
                expected_main_package_id: Some(item.expected_main_package_id),
            }],
            vet_all_packages: options.vet_all_packages,
            synchronize_vetting: options.synchronize_vetting,
            synchronizer_id: options.synchronizer_id.clone(),
        };
        // Re-sending after UNAVAILABLE is safe: Canton stores a DAR it
        // already has as a no-op (keyed by main package id).
        let response = self
            .conn
            .call(|_| {
                let mut client = client.clone();
                let request = request.clone();
                async move { client.upload_dar(request).await }
            })
            .await?;
        Ok(response.into_inner().dar_ids)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory node for unit tests of the sync logic.
    use super::*;
    use std::sync::Mutex;

    /// Holds DARs, counts calls, and fails uploads on demand.
    #[derive(Debug, Default)]
    pub struct FakeNode {
        pub dars: Mutex<Vec<NodeDar>>,
        pub list_limits: Mutex<Vec<i32>>,
        pub uploads: Mutex<Vec<(String, UploadOptions)>>,
        /// Upload answers to give instead of storing, by expected id.
        pub refuse: Mutex<Vec<(String, tonic::Status)>>,
    }

    impl FakeNode {
        pub fn with(dars: Vec<NodeDar>) -> Self {
            FakeNode {
                dars: Mutex::new(dars),
                ..Default::default()
            }
        }
    }

    pub fn node_dar(id: &str, name: &str) -> NodeDar {
        NodeDar {
            main_package_id: id.to_string(),
            name: name.to_string(),
            version: "1.0.0".to_string(),
            description: format!("DAR_{id}"),
        }
    }

    impl DarService for FakeNode {
        async fn list_dars(&self, limit: i32) -> Result<Vec<NodeDar>, CantonError> {
            self.list_limits.lock().unwrap().push(limit);
            let mut all = self.dars.lock().unwrap().clone();
            // Canton promises no order: answer in reverse to catch assumptions.
            all.reverse();
            all.truncate(if limit <= 0 {
                usize::MAX
            } else {
                limit as usize
            });
            Ok(all)
        }

        async fn upload_dar(
            &self,
            item: UploadItem,
            options: &UploadOptions,
        ) -> Result<Vec<String>, CantonError> {
            let id = item.expected_main_package_id.clone();
            if let Some((_, status)) = self.refuse.lock().unwrap().iter().find(|(r, _)| *r == id) {
                return Err(CantonError::from_status(status));
            }
            let info = daml_dar::inspect_bytes(&item.bytes).expect("tests upload valid DARs");
            assert_eq!(info.dar.main_package_id, id, "expected id is the DAR's");
            self.uploads
                .lock()
                .unwrap()
                .push((id.clone(), options.clone()));
            let mut dars = self.dars.lock().unwrap();
            if !dars.iter().any(|d| d.main_package_id == id) {
                dars.push(NodeDar {
                    main_package_id: id.clone(),
                    name: info.dar.name,
                    version: info.dar.version,
                    description: item.description.unwrap_or_default(),
                });
            }
            Ok(vec![id])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;

    fn block<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn many(n: usize) -> Vec<NodeDar> {
        (0..n)
            .map(|i| node_dar(&format!("{i:064x}"), &format!("p{i}")))
            .collect()
    }

    #[test]
    fn a_short_answer_is_complete() {
        let node = FakeNode::with(many(3));
        let all = block(list_all(&node, 1000)).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(*node.list_limits.lock().unwrap(), [1000]);
        // sorted by id whatever order the node answered in
        assert!(
            all.windows(2)
                .all(|w| w[0].main_package_id < w[1].main_package_id)
        );
    }

    #[test]
    fn a_full_answer_is_asked_again_with_twice_the_limit() {
        let node = FakeNode::with(many(5));
        let all = block(list_all(&node, 2)).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(*node.list_limits.lock().unwrap(), [2, 4, 8]);
        // exactly the limit is not trusted to be all either
        let node = FakeNode::with(many(4));
        assert_eq!(block(list_all(&node, 4)).unwrap().len(), 4);
        assert_eq!(*node.list_limits.lock().unwrap(), [4, 8]);
    }

    #[test]
    fn limit_zero_is_never_sent() {
        let node = FakeNode::with(many(1));
        block(list_all(&node, 0)).unwrap();
        assert_eq!(*node.list_limits.lock().unwrap(), [1, 2]);
    }

    #[test]
    fn builtin_dars_are_recognised_by_name() {
        assert!(node_dar("a", "canton-builtin-admin-workflow-ping").is_builtin());
        assert!(
            node_dar("a", "canton-builtin-admin-workflow-party-replication-alpha").is_builtin()
        );
        assert!(!node_dar("a", "splice-amulet").is_builtin());
    }
}
