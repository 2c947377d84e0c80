#!/bin/sh
# tls_pki.sh DIR - the certificates of fault_tls, made with the openssl CLI
# (P-256 keys, valid 2 days):
#   root.pem              a root CA the nodes trust
#   inter.pem/.key        an intermediate CA under it
#   leaf.pem/.key         localhost + 127.0.0.1, issued by the intermediate;
#                         leaf.pem holds the chain (leaf, intermediate)
#   wrong.pem/.key        wrong.example only, same chain (a host mismatch)
#   root2.pem             a second root CA nobody trusts at first
#   leaf2.pem/.key        localhost + 127.0.0.1, issued by root2 (the
#                         certificate a reload switches to)
set -eu
cd "$1"
req() { # name CN: a P-256 key and a CSR
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
}
root() { # name CN: a self-signed CA
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
sign() { # name issuer extfile: name.crt from name.csr
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
        -out "$1.crt" -days 2 -extfile "$3" 2>/dev/null
}
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >ca.ext
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >leaf.ext
printf 'subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n' >wrong.ext

root root rdv-test-root
req inter rdv-test-intermediate
sign inter root ca.ext
cp inter.crt inter.pem
req leaf localhost
sign leaf inter leaf.ext
cat leaf.crt inter.pem >leaf.pem
req wrong wrong.example
sign wrong inter wrong.ext
cat wrong.crt inter.pem >wrong.pem
root root2 rdv-test-root-2
req leaf2 localhost
sign leaf2 root2 leaf.ext
cp leaf2.crt leaf2.pem
