//! Port implementations: `aws` (DynamoDB + SQS through the AWS SDK) and `embedded` (redb in a data directory).

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
