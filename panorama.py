from panorama_kpi.cli import main

main()
