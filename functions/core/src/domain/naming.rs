//! Names Bedrock accepts: job names, custom model names, provisioned model names, client request
//! tokens, and the S3 URI pattern. (Owned by the job-launcher work in issue 3.)
