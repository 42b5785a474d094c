$drive = (Get-Item -LiteralPath {{ params.path }}).PSDrive
$free = [int][math]::Floor(100 * $drive.Free / ($drive.Used + $drive.Free))
$ok = $free -ge {{ params.min_free_percent }}
[pscustomobject]@{ free_percent = $free; ok = $ok } | ConvertTo-Json -Compress
if (-not $ok) { exit 1 }
