$opscScript = Join-Path ([IO.Path]::GetTempPath()) ('opsc-script-' + [guid]::NewGuid().ToString('N') + {{ params.extension | default('.ps1') }})
try {
    [IO.File]::WriteAllText($opscScript, {{ params.script }}, (New-Object System.Text.UTF8Encoding $false))
    'OPSC_OUTPUT changed=true'
    $global:LASTEXITCODE = 0
{% if params.interpreter %}
    & {{ params.interpreter }} $opscScript{% for arg in params.args %} {{ arg }}{% endfor %}

{% else %}
    & powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $opscScript{% for arg in params.args %} {{ arg }}{% endfor %}

{% endif %}
    $opscStatus = $LASTEXITCODE
} finally {
    Remove-Item -LiteralPath $opscScript -Force -ErrorAction SilentlyContinue
}
exit $opscStatus
