//! Integration tests live in `tests/`; see each file. They start moto server (`scripts/bootstrap.sh`
//! installs it into `.venv`) and the Bedrock simulator on free loopback ports.
