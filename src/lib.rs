pub mod transcode;
