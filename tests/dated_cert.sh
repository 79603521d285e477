# SPDX-License-Identifier: Apache-2.0
# Sourced by the shell tests: a certificate valid between two chosen dates
# (an expired one, a not-yet-valid one), the same with the openssl command of
# OpenSSL 3.0 and of 3.5. `openssl x509 -req` and `req -x509` take only -days
# there: an expired certificate made with -days -1 (notAfter before notBefore)
# is refused since 3.4 ("end date before start date"), and their -not_before /
# -not_after options only exist since 3.4. `openssl ca` has taken -startdate
# and -enddate all along; it runs here with a configuration of its own (in
# OUT.ca/) that keeps the request's subject as it is (-preserveDN).

# dated_utc DAYS: the UTC time DAYS days from now (negative: ago), YYYYMMDDHHMMSSZ
dated_utc() {
    date -u -d "@$(( $(date +%s) + $1 * 86400 ))" +%Y%m%d%H%M%SZ
}

# dated_cert RUN CSR ISSUER-CERT ISSUER-KEY EXTFILE SERIAL FROM TO OUT: OUT,
# the certificate of CSR signed by the issuer with the extensions of EXTFILE,
# valid from FROM to TO (days from now, e.g. -2 -1: it expired yesterday).
# RUN: the caller's openssl wrapper (runs `openssl ARGS...`, fails the test
# with openssl's output when openssl fails).
dated_cert() {
    _dc_run=$1 _dc_out=$9
    _dc_dir=$_dc_out.ca
    rm -rf "$_dc_dir" && mkdir -p "$_dc_dir" || return 1
    : >"$_dc_dir/index.txt"
    _dc_serial=$(printf '%X' "$6")     # openssl reads an even number of hex digits
    [ $(( ${#_dc_serial} % 2 )) -eq 0 ] || _dc_serial=0$_dc_serial
    echo "$_dc_serial" >"$_dc_dir/serial"
    cat >"$_dc_dir/ca.cnf" <<EOF
[ca]
default_ca = dated
[dated]
database = $_dc_dir/index.txt
new_certs_dir = $_dc_dir
serial = $_dc_dir/serial
default_md = sha256
unique_subject = no
policy = dated_any
[dated_any]
commonName = optional
EOF
    "$_dc_run" ca -batch -notext -preserveDN -config "$_dc_dir/ca.cnf" -in "$2" -cert "$3" -keyfile "$4" \
        -extfile "$5" -startdate "$(dated_utc "$7")" -enddate "$(dated_utc "$8")" -out "$_dc_out"
}
