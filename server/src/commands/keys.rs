//! `callpush keys`: make a new signing key.

use std::path::PathBuf;

use callpush_server::signing_key;

/// Arguments of `callpush keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, default_value = "callpush-signing-key.pem")]
    out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    /// Print `{"private_key_path": …, "public_jwk": …}` instead of two lines.
    #[arg(long)]
    json: bool,
}

/// Writes a new key and prints where it is and its public JWK.
pub fn run(args: Args) -> Result<(), String> {
    let signer = signing_key::generate();
    signing_key::write(&args.out, &signer, args.force).map_err(|e| e.to_string())?;
    let path = std::fs::canonicalize(&args.out).unwrap_or(args.out);
    let jwk = serde_json::to_value(signer.public_jwk()).map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::json!({ "private_key_path": path, "public_jwk": jwk }));
    } else {
        println!("private key: {}", path.display());
        println!("public JWK:  {jwk}");
    }
    Ok(())
}
