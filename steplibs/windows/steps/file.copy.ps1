$ErrorActionPreference = 'Stop'
$src = {{ params.src }}
$dest = {{ params.dest }}
$hash = (Get-FileHash -LiteralPath $src -Algorithm SHA256).Hash
$changed = $true
if (Test-Path -LiteralPath $dest -PathType Leaf) {
    $changed = (Get-FileHash -LiteralPath $dest -Algorithm SHA256).Hash -ne $hash
}
if ($changed) {
    $dir = Split-Path -Parent $dest
{% if params.create_dirs %}
    if ($dir -and -not (Test-Path -LiteralPath $dir)) { New-Item -ItemType Directory -Path $dir -Force | Out-Null }
{% endif %}
    Copy-Item -LiteralPath $src -Destination $dest -Force
}
[pscustomobject]@{ changed = $changed; sha256 = $hash.ToLowerInvariant() } | ConvertTo-Json -Compress
