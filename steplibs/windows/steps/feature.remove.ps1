$ErrorActionPreference = 'Stop'
$names = {{ params.names | args }}
$restart = $false
if (Get-Command -Name Uninstall-WindowsFeature -ErrorAction SilentlyContinue) {
    $todo = @(Get-WindowsFeature -Name $names | Where-Object { $_.Installed } | ForEach-Object { $_.Name })
    if ($todo.Count -gt 0) {
        $result = Uninstall-WindowsFeature -Name $todo
        if (-not $result.Success) { throw "Uninstall-WindowsFeature failed with exit code $($result.ExitCode)" }
        $restart = [string]$result.RestartNeeded -eq 'Yes'
    }
} else {
    $todo = @($names | Where-Object { (Get-WindowsOptionalFeature -Online -FeatureName $_).State -eq 'Enabled' })
    if ($todo.Count -gt 0) {
        $result = Disable-WindowsOptionalFeature -Online -FeatureName $todo -NoRestart
        $restart = [bool]$result.RestartNeeded
    }
}
[pscustomobject]@{ changed = $todo.Count -gt 0; restart_needed = $restart; features = $todo } | ConvertTo-Json -Compress
