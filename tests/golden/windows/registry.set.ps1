$ErrorActionPreference = 'Stop'
$path = 'HKLM:\SOFTWARE\Contoso\App'
$name = 'Greeting'
$type = 'String'
$value = 'it''s ‘‘quoted’’ $(x)'
if ($type -eq 'Binary') { $value = [byte[]]$value }
if ($type -eq 'MultiString') { $value = [string[]]$value }
if (-not (Test-Path -LiteralPath $path)) {
    New-Item -Path $path -Force | Out-Null
}
$key = Get-Item -LiteralPath $path
$same = $false
if ($key.GetValueNames() -contains $name) {
    $kind = $key.GetValueKind($name).ToString()
    $current = $key.GetValue($name, $null, 'DoNotExpandEnvironmentNames')
    $same = $kind -eq $type -and ((@($current) -join "`n") -ceq (@($value) -join "`n"))
}
if (-not $same) {
    New-ItemProperty -LiteralPath $path -Name $name -PropertyType $type -Value $value -Force | Out-Null
}
[pscustomobject]@{ changed = -not $same } | ConvertTo-Json -Compress
